/**
 * The widget pasted into someone else's page: a host site on a second loopback origin (another port)
 * carries only the script tag, and a visitor there completes a real call with an agent on the server's
 * own dashboard. A server whose ALLOWED_ORIGINS leaves that site out refuses it, and the widget says so.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, newPerson, openPage, waitForMediaFlowing } from '../support/browser.ts';
import { connectCall, hangUpButton } from '../support/call-steps.ts';
import { openAgent, startApp, status, waitForText, type App, type Person } from '../support/e2e.ts';
import { TurnServer } from '../support/turn.ts';

/** A shop's page on its own origin: nothing of ours but the tag. */
async function hostSite(app: App): Promise<{ url: string; server: Server }> {
  const page = `<!doctype html><meta charset="utf-8"><title>Shop</title><body><h1>The shop</h1>
<script src="${app.url}/widget.js" data-pool="support" defer></script>`;
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(page));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

async function openShop(browser: Browser, url: string): Promise<Person> {
  const context = await newPerson(browser);
  const page = await openPage(context, url);
  return { context, page };
}

describe('the widget on another site', () => {
  let browser: Browser;
  let turn: TurnServer;
  const undo: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    browser = await launchBrowser();
    turn = await TurnServer.create();
    await turn.start();
  }, 30_000);

  afterEach(async () => {
    for (const context of browser.contexts()) await context.close();
    for (const step of undo.splice(0).reverse()) await step();
  });

  afterAll(async () => {
    await browser?.close();
    await turn?.dispose();
  });

  it('completes a real call from a page on another origin', async () => {
    const app = await startApp(turn);
    undo.push(() => app.close());
    const shop = await hostSite(app);
    undo.push(() => new Promise((resolve) => shop.server.close(resolve)));
    expect(new URL(shop.url).origin).not.toBe(new URL(app.url).origin);

    const visitor = await openShop(browser, shop.url);
    await waitForText(visitor.page, visitor.page.getByRole('button'), 'Call an agent', 15_000);
    const ada = await openAgent(browser, app, 'ada');
    await connectCall(visitor, ada, 'ada');
    await Promise.all([waitForMediaFlowing(visitor.page), waitForMediaFlowing(ada.page)]);
    await hangUpButton(visitor.page).click();
    await status(visitor.page, 'The call has ended');
  }, 60_000);

  it('is refused on a site the server does not allow, and says so', async () => {
    const app = await startApp(turn, { ALLOWED_ORIGINS: 'https://shop.example' });
    undo.push(() => app.close());
    const shop = await hostSite(app);
    undo.push(() => new Promise((resolve) => shop.server.close(resolve)));

    const visitor = await openShop(browser, shop.url);
    await status(visitor.page, 'Video calls are not enabled for this website.', 15_000);
    expect(await visitor.page.getByRole('button', { name: 'Call an agent' }).count()).toBe(0);
  }, 30_000);
});
