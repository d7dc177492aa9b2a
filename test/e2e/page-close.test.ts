/**
 * Closing the widget's page in real Chromium: the page's `pagehide` beacon cancels the waiting request at
 * once, so the visitor queued behind is first in line for good long before RESUME_WINDOW_MS.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchBrowser, newPerson, openPage, pageLog } from '../support/browser.ts';
import { TestClient, closeClientsThenServer, startTestServer, stored, visitorToken, type TestServer } from '../support/server.ts';

const RESUME_WINDOW_MS = 20_000;

let browser: Browser;
let t: TestServer | null = null;
const clients: TestClient[] = [];
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(() => browser.close());
afterEach(async () => {
  await closeClientsThenServer(clients, t);
  t = null;
});

describe('a widget page that closes while its visitor waits in line', () => {
  it('cancels the request at once with its beacon', async () => {
    t = await startTestServer({ RESUME_WINDOW_MS: String(RESUME_WINDOW_MS), RING_TIMEOUT_MS: '60000', MAX_QUEUE_WAIT_MS: '60000' });
    const server = t.server;
    const page = await openPage(await newPerson(browser), `${t.url}/`);
    await page.getByRole('button', { name: 'Call an agent' }).click({ timeout: 15_000 });
    await expect.poll(() => server.switchboard.live().length, { timeout: 10_000 }).toBe(1);
    const [first] = server.switchboard.live();
    const walt = await TestClient.connect(t.url, (await visitorToken(t.url, 'Walt')).token);
    clients.push(walt);
    const { requestId: waltRequest } = (await walt.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    await walt.next('routing.update', (u) => u.state === 'queued' && u.position === 2).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${pageLog(page)}`);
    });

    const closedAt = Date.now();
    await page.close();
    await expect.poll(async () => (await stored(server, (store) => store.requests.get(first!.requestId)))?.endReason, { timeout: 5_000 }).toBe('cancelled');
    expect(Date.now() - closedAt).toBeLessThan(RESUME_WINDOW_MS / 4);
    expect(server.switchboard.live().map((r) => r.requestId)).toEqual([waltRequest]);
  });
});
