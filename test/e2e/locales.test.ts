/**
 * The widget and the dashboard in German. A host page asks for it with `data-lang="de"` on the tag, in
 * an English browser; a browser set to Austrian German gets it without asking, on the widget and on the
 * dashboard, where `?lang=` still wins. The other scenarios run in Chromium's English.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { newPerson, openPage } from '../support/browser.ts';
import { browserSuite } from '../support/browser-suite.ts';
import { screenshot, shopPage, status, waitForText } from '../support/e2e.ts';
import { DEMO } from '../support/server.ts';

/** Like `newPerson`, with the browser's language set as a visitor's or an agent's own browser would have it. */
async function personSpeaking(browser: Browser, locale: string): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 960, height: 720 }, locale });
  await context.grantPermissions(['camera', 'microphone']);
  return context;
}

/** The widget's panel inside its shadow root. */
const panel = (page: Page) => page.locator('#callchart-widget section.panel');

describe('the widget and the dashboard in German', () => {
  // Nobody calls through the relay here; the app wants its address all the same.
  const suite = browserSuite({ sharedApp: true, relayStarted: false });

  it('speaks German when its tag says data-lang="de", from the first screen to no agent being free', async () => {
    // A shop's page on its own origin whose tag asks for the widget in German.
    const page = await openPage(await newPerson(suite.browser), await suite.page(shopPage(suite.app, ' data-lang="de"')));
    expect(await page.evaluate(() => navigator.language)).toMatch(/^en/);

    await waitForText(page, page.getByRole('button'), 'Videoanruf starten', 15_000);
    await page.getByRole('heading', { name: 'Video-Support' }).waitFor();
    expect(await panel(page).getAttribute('lang')).toBe('de');
    // The widget says what language it is in; the host page's own stays the host's.
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    expect(await panel(page).innerText()).toContain('Ihre Kamera und Ihr Mikrofon werden nur während des Gesprächs verwendet.');
    await screenshot(page, 'widget-de-idle');

    // No agent is logged in: the request waits in line, then ends with nobody free.
    await page.getByRole('button', { name: 'Videoanruf starten' }).click();
    await status(page, 'Sie sind Nummer 1 in der Warteschlange');
    await status(page, 'Zurzeit ist leider niemand aus unserem Team erreichbar', 10_000);
    await page.getByRole('button', { name: 'Erneut versuchen' }).waitFor();
    await screenshot(page, 'widget-de-no-agents');
    expect(await panel(page).innerText()).not.toMatch(/Retry|No agents|Video support/);
  }, 60_000);

  it('follows a browser set to de-AT on the widget and the dashboard, unless the dashboard is asked for ?lang=en', async () => {
    const context = await personSpeaking(suite.browser, 'de-AT');
    const visitor = await openPage(context, `${suite.app.url}/`);
    await waitForText(visitor, visitor.getByRole('button'), 'Videoanruf starten', 15_000);
    expect(await panel(visitor).getAttribute('lang')).toBe('de');

    const agent = await openPage(context, `${suite.app.url}/agent`);
    await waitForText(agent, agent.getByRole('button'), 'Anmelden', 15_000);
    expect(await agent.locator('html').getAttribute('lang')).toBe('de');
    expect(await agent.title()).toBe('Support-Dashboard · Acme Support');
    await agent.getByLabel('E-Mail-Adresse').fill(DEMO.ada.email);
    await agent.getByLabel('Passwort').fill('not her password');
    await agent.getByRole('button', { name: 'Anmelden' }).click();
    await waitForText(agent, agent.getByRole('alert'), 'E-Mail-Adresse oder Passwort ist falsch.');
    await agent.getByLabel('Passwort').fill(DEMO.ada.password);
    await agent.getByRole('button', { name: 'Anmelden' }).click();
    await agent.getByRole('button', { name: 'Abmelden' }).waitFor({ timeout: 15_000 });
    await agent.getByRole('group', { name: 'Verfügbarkeit' }).getByRole('button', { name: 'Verfügbar' }).waitFor();
    await agent.getByRole('heading', { name: 'Anrufverlauf' }).waitFor();

    // A tab of its own keeps its own session, so this one starts at the login.
    const english = await openPage(context, `${suite.app.url}/agent?lang=en`);
    await waitForText(english, english.getByRole('button'), 'Log in', 15_000);
    expect(await english.locator('html').getAttribute('lang')).toBe('en');
    expect(await english.title()).toBe('Agent dashboard · Acme Support');
    await english.getByLabel('Email').waitFor();
  }, 60_000);
});
