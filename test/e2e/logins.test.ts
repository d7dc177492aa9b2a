/**
 * The login the dashboard and the inspector share: what each says when a login fails, and which kept
 * session each takes back after a reload. The inspector needs the inspector role, at the form and in
 * what it finds in sessionStorage; the dashboard drops what is not a live session.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { newPerson, openPage } from '../support/browser.ts';
import { browserSuite } from '../support/browser-suite.ts';
import { waitForText } from '../support/e2e.ts';
import { DEMO, type DemoAgent } from '../support/server.ts';

const INSPECTOR_KEY = 'callchart.inspectorSession';
const DASHBOARD_KEY = 'callchart.agentSession';

async function logIn(page: Page, email: string, password: string): Promise<void> {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** A real session of `agent`, asked of the server from the page as the apps ask for theirs. */
async function sessionOf(page: Page, agent: DemoAgent): Promise<unknown> {
  const { email, password } = DEMO[agent];
  return page.evaluate(async (body) => {
    const response = await fetch('/api/agents/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return response.json() as Promise<unknown>;
  }, { email, password });
}

const kept = (page: Page, key: string) => page.evaluate((storageKey) => sessionStorage.getItem(storageKey), key);

describe('the shared login', () => {
  // Nobody calls here; the app wants the relay's address all the same.
  const suite = browserSuite({ sharedApp: true, relayStarted: false });

  it('keeps the inspector to accounts with the inspector role, at the form and after a reload', async () => {
    const page = await openPage(await newPerson(suite.browser), `${suite.app.url}/inspect`);
    await waitForText(page, page.getByRole('button'), 'Log in', 15_000);
    await page.getByRole('heading', { name: 'Inspector' }).waitFor();

    await logIn(page, DEMO.inspector.email, 'not the password');
    // The inspector speaks English, so the server's own sentence is the one it shows.
    await waitForText(page, page.getByRole('alert'), 'The email or password is incorrect.');

    await logIn(page, DEMO.ada.email, DEMO.ada.password);
    await waitForText(page, page.getByRole('alert'), `${DEMO.ada.name}'s account lacks the inspector role, so it cannot open the inspector. Log in with an inspector account.`);
    expect(await kept(page, INSPECTOR_KEY)).toBeNull();

    await logIn(page, DEMO.inspector.email, DEMO.inspector.password);
    await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 15_000 });
    await page.getByText(DEMO.inspector.name).first().waitFor();

    await page.reload();
    await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 15_000 });
    await page.getByRole('button', { name: 'Log out' }).click();
    await waitForText(page, page.getByRole('button'), 'Log in');
    expect(await kept(page, INSPECTOR_KEY)).toBeNull();

    // A session the server did give, but to an account without the role: the reload forgets it before
    // opening the feed, so the server never has to turn it away (which would leave its notice on the form).
    const ada = await sessionOf(page, 'ada');
    expect(ada).toMatchObject({ agent: { id: DEMO.ada.id } });
    await page.evaluate(([key, value]) => sessionStorage.setItem(key, value), [INSPECTOR_KEY, JSON.stringify(ada)] as const);
    await page.reload();
    await waitForText(page, page.getByRole('button'), 'Log in', 15_000);
    expect(await kept(page, INSPECTOR_KEY)).toBeNull();
    expect(await page.getByText('lacks the inspector role').count()).toBe(0);
  }, 60_000);

  it('takes back a live dashboard session after a reload and drops one that has expired or is not a session', async () => {
    const page = await openPage(await newPerson(suite.browser), `${suite.app.url}/agent`);
    await waitForText(page, page.getByRole('button'), 'Log in', 15_000);
    await page.getByRole('heading', { name: 'Agent dashboard' }).waitFor();

    await logIn(page, DEMO.ada.email, DEMO.ada.password);
    await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 15_000 });
    const session = JSON.parse((await kept(page, DASHBOARD_KEY)) ?? 'null') as { expiresAt: number } | null;
    expect(session).toMatchObject({ agent: { id: DEMO.ada.id } });

    await page.reload();
    await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 15_000 });

    for (const stored of [{ ...session, expiresAt: Date.now() - 1_000 }, { token: 'a token and nothing else', expiresAt: Date.now() + 60_000 }]) {
      await page.evaluate(([key, value]) => sessionStorage.setItem(key, value), [DASHBOARD_KEY, JSON.stringify(stored)] as const);
      await page.reload();
      await waitForText(page, page.getByRole('button'), 'Log in', 15_000);
      expect(await kept(page, DASHBOARD_KEY)).toBeNull();
    }
  }, 60_000);
});
