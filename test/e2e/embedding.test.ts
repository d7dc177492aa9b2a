/**
 * The widget pasted into someone else's page: a host site on a second loopback origin (another port)
 * carries only the script tag, and a visitor there completes a real call with an agent on the server's
 * own dashboard. A server whose ALLOWED_ORIGINS leaves that site out refuses it, and the widget says so.
 */
import type { Browser } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { newPerson, openPage, waitForMediaFlowing } from '../support/browser.ts';
import { browserSuite } from '../support/browser-suite.ts';
import { connectCall, hangUpButton } from '../support/call-steps.ts';
import { openAgent, shopPage, status, waitForText, type Person } from '../support/e2e.ts';

async function openShop(browser: Browser, url: string): Promise<Person> {
  const context = await newPerson(browser);
  const page = await openPage(context, url);
  return { context, page };
}

describe('the widget on another site', () => {
  const suite = browserSuite();

  it('completes a real call from a page on another origin', async () => {
    const app = await suite.startApp();
    const shop = await suite.page(shopPage(app));
    expect(new URL(shop).origin).not.toBe(new URL(app.url).origin);

    const visitor = await openShop(suite.browser, shop);
    await waitForText(visitor.page, visitor.page.getByRole('button'), 'Call an agent', 15_000);
    const ada = await openAgent(suite.browser, app, 'ada');
    await connectCall(visitor, ada, 'ada');
    await Promise.all([waitForMediaFlowing(visitor.page), waitForMediaFlowing(ada.page)]);
    await hangUpButton(visitor.page).click();
    await status(visitor.page, 'The call has ended');
  }, 60_000);

  it('is refused on a site the server does not allow, and says so', async () => {
    const app = await suite.startApp({ ALLOWED_ORIGINS: 'https://shop.example' });
    const visitor = await openShop(suite.browser, await suite.page(shopPage(app)));
    await status(visitor.page, 'Video calls are not enabled for this website.', 15_000);
    expect(await visitor.page.getByRole('button', { name: 'Call an agent' }).count()).toBe(0);
  }, 30_000);
});
