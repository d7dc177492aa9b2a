/**
 * The server crashes mid-call (SIGKILL) and comes back on the same port and database. The media path
 * never touches the server, so the call must keep flowing while both clients back off, reconnect and
 * resume the same call. A request made while the server is down waits in the visitor's outbox.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { waitForMediaFlowing } from '../support/browser.ts';
import { browserSuite } from '../support/browser-suite.ts';
import { acceptAndConnect, acceptButton, connectCall, hangUpButton, requestCall, TEXT } from '../support/call-steps.ts';
import { openAgent, openVisitor, screenshot, status, visitorCallId, waitForCall } from '../support/e2e.ts';

const signalingState = (page: Page) =>
  page.evaluate(() => {
    const signaling = (window as unknown as { callchart?: { signaling?: { getSnapshot(): { value: unknown } } } }).callchart?.signaling;
    return JSON.stringify(signaling?.getSnapshot().value ?? null);
  });

async function waitForSignaling(page: Page, state: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await signalingState(page);
    if (state.test(value)) return;
    if (Date.now() > deadline) throw new Error(`signaling on ${page.url()} stayed ${value}, expected ${String(state)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('a server crash mid-call', () => {
  const suite = browserSuite();

  it('keeps the media flowing while the server is down, and both clients resume the same call', async () => {
    // The agent's grace runs from the moment the server went, not from its restart: it must outlast the
    // time the server is down here, or the restarted server rightly reassigns the visitor.
    const app = await suite.startApp({ AGENT_GRACE_MS: '20000' });
    const visitor = await openVisitor(suite.browser, app);
    const ada = await openAgent(suite.browser, app, 'ada');
    await connectCall(visitor, ada, 'ada');
    const callId = await visitorCallId(visitor.page);

    const killedAt = Date.now();
    await app.kill();
    await Promise.all([waitForSignaling(visitor.page, /reconnecting/, 5_000), waitForSignaling(ada.page, /reconnecting/, 5_000)]);
    // Down long enough for more than one backoff step: the clients must keep trying, not give up.
    await Promise.all([waitForMediaFlowing(visitor.page), waitForMediaFlowing(ada.page)]);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await Promise.all([waitForMediaFlowing(visitor.page), waitForMediaFlowing(ada.page)]);

    const restart = await app.crashAndRestart();
    await Promise.all([waitForSignaling(visitor.page, /connected/, 35_000), waitForSignaling(ada.page, /connected/, 35_000)]);
    console.log(
      `server crash: down ${restart.listeningAt - killedAt} ms; both clients signaling again ` +
        `${Date.now() - restart.listeningAt} ms after the new server listened`,
    );
    expect(await visitorCallId(visitor.page)).toBe(callId);
    await Promise.all([waitForMediaFlowing(visitor.page), waitForMediaFlowing(ada.page)]);
    expect(await hangUpButton(ada.page).isVisible()).toBe(true);

    // The restored server still runs this call: a hang-up now ends it on both sides and in the store.
    await hangUpButton(ada.page).click();
    await status(visitor.page, 'The call has ended');
    const details = await waitForCall(app, callId, (d) => d.call.endedAt !== null);
    expect(details.call.endReason).toMatch(/hangup/);
  }, 90_000);

  it('keeps a call request made while the server is down, and rings Ada once it is back', async () => {
    // The visitor and Ada come back on their own backoff schedules; the request must not run out of queue
    // time if the visitor's socket is the first one back.
    const app = await suite.startApp({ MAX_QUEUE_WAIT_MS: '30000' });
    const visitor = await openVisitor(suite.browser, app);
    const ada = await openAgent(suite.browser, app, 'ada');

    await app.kill();
    await waitForSignaling(visitor.page, /reconnecting/, 5_000);
    await requestCall(visitor);
    await status(visitor.page, TEXT.searching);
    await screenshot(visitor.page, 'widget-searching');

    await app.crashAndRestart();
    await status(visitor.page, TEXT.ringing('ada'), 20_000);
    await acceptButton(ada.page).waitFor({ timeout: 10_000 });
    await acceptAndConnect(visitor, ada);
  }, 60_000);
});
