/**
 * The server's Content-Security-Policy in a real Chromium: the demo host page with the widget, the agent
 * dashboard and the inspector go through a whole call (login, sockets, camera, relayed media, the
 * inspector's graph) with not one violation reported, while an inline script injected into any of them
 * is refused, so the policy is really in force.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { newPerson, openPage } from '../support/browser.ts';
import { browserSuite } from '../support/browser-suite.ts';
import { connectCall } from '../support/call-steps.ts';
import { waitForText, type Person } from '../support/e2e.ts';
import { DEMO, type DemoAgent } from '../support/server.ts';

interface Watched extends Person {
  /** The console's CSP reports, which Chromium writes for every violation, workers and frames included. */
  consoleReports: string[];
}

/** Runs in every document before its own scripts: keeps each violation the page is told of. */
function recordViolations(): void {
  const seen: string[] = [];
  (window as unknown as { cspViolations: string[] }).cspViolations = seen;
  document.addEventListener('securitypolicyviolation', (event) => seen.push(`${event.effectiveDirective} blocked ${event.blockedURI} in ${event.sourceFile}:${String(event.lineNumber)}`), true);
}

async function openWatched(browser: Browser, url: string): Promise<Watched> {
  const context: BrowserContext = await newPerson(browser);
  await context.addInitScript(recordViolations);
  const consoleReports: string[] = [];
  context.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) consoleReports.push(message.text());
  });
  return { context, page: await openPage(context, url), consoleReports };
}

async function logIn(page: Page, agent: DemoAgent): Promise<void> {
  await waitForText(page, page.getByRole('button'), 'Log in', 15_000);
  await page.getByLabel('Email').fill(DEMO[agent].email);
  await page.getByLabel('Password').fill(DEMO[agent].password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

const violations = (page: Page) => page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations);

/** Whether an inline script added to the page runs: it must not, and the page reports the refusal. */
const inlineScriptRuns = (page: Page) =>
  page.evaluate(async () => {
    const script = document.createElement('script');
    script.textContent = 'window.inlineScriptRan = true';
    document.body.append(script);
    await new Promise((resolve) => setTimeout(resolve, 100));
    return (window as unknown as { inlineScriptRan?: boolean }).inlineScriptRan === true;
  });

describe('the Content-Security-Policy in Chromium', () => {
  const suite = browserSuite();

  it('lets the demo page, the dashboard and the inspector do all they do, and nothing inline', async () => {
    const app = await suite.startApp({ INSPECT_CLIENTS: 'on' });
    const visitor = await openWatched(suite.browser, `${app.url}/`);
    await waitForText(visitor.page, visitor.page.getByRole('button'), 'Call an agent', 15_000);
    // The page's one inline handler keeps its search form from submitting: it runs, and the page stays.
    await visitor.page.getByRole('button', { name: 'Search' }).click();
    await visitor.page.waitForTimeout(300);
    expect(visitor.page.url()).toBe(`${app.url}/`);
    const ada = await openWatched(suite.browser, `${app.url}/agent`);
    await logIn(ada.page, 'ada');
    const available = ada.page.getByRole('group', { name: 'Presence' }).getByRole('button', { name: 'Available' });
    await available.waitFor({ timeout: 15_000 });
    if ((await available.getAttribute('aria-pressed')) !== 'true') await available.click();
    await connectCall(visitor, ada, 'ada');

    const inspector = await openWatched(suite.browser, `${app.url}/inspect`);
    await logIn(inspector.page, 'inspector');
    await inspector.page.locator('button[data-request-id]').first().click({ timeout: 15_000 });
    // The graph is laid out and drawn, and the live feed has filled it in.
    await inspector.page.locator('[data-kind="routing"][data-side="server"]').first().waitFor({ timeout: 15_000 });

    const pages = { visitor, ada, inspector };
    for (const [who, person] of Object.entries(pages)) {
      expect({ who, violations: await violations(person.page), console: person.consoleReports }).toEqual({ who, violations: [], console: [] });
    }
    for (const [who, person] of Object.entries(pages)) {
      expect({ who, ran: await inlineScriptRuns(person.page) }).toEqual({ who, ran: false });
      expect(await violations(person.page)).toEqual([expect.stringMatching(/^script-src-elem blocked inline/)]);
    }
  }, 90_000);
});
