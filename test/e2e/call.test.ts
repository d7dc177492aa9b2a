/**
 * The everyday call in the real widget and dashboard: a visitor calls, Ada accepts, both see and hear
 * each other through the relay, the visitor hangs up, and Ada finds the call in her history. Also a call
 * accepted while the relay is down, which stays in Connecting until the relay is back.
 */
import { describe, expect, it } from 'vitest';
import { waitForMediaFlowing } from '../support/browser.ts';
import { browserSuite } from '../support/browser-suite.ts';
import { acceptAndConnect, acceptButton, connectionIndicator, hangUpButton, requestCall, statusCleared, TEXT } from '../support/call-steps.ts';
import { openAgent, openVisitor, ownCameraShowing, screenshot, status, visitorCallId, waitForCall, waitForText } from '../support/e2e.ts';

describe('a video call between the widget and the dashboard', () => {
  const suite = browserSuite();

  it('connects a visitor to Ada with two-way media, hangs up, and lists the call in her history', async () => {
    const app = await suite.startApp();
    const visitor = await openVisitor(suite.browser, app);
    await screenshot(visitor.page, 'widget-idle');
    const ada = await openAgent(suite.browser, app, 'ada', { screenshotLogin: 'dashboard-login' });
    await screenshot(ada.page, 'dashboard-available');

    await requestCall(visitor);
    await status(visitor.page, TEXT.ringing('ada'));
    await acceptButton(ada.page).waitFor();
    await screenshot(visitor.page, 'widget-ringing');
    await screenshot(ada.page, 'dashboard-ringing');

    await acceptAndConnect(visitor, ada);
    await screenshot(visitor.page, 'widget-in-call');
    await screenshot(ada.page, 'dashboard-in-call');
    const callId = await visitorCallId(visitor.page);

    await hangUpButton(visitor.page).click();
    await status(visitor.page, 'The call has ended');
    await visitor.page.getByRole('button', { name: 'Call an agent' }).waitFor();
    await screenshot(visitor.page, 'widget-call-ended');

    const history = ada.page.getByRole('region', { name: /history/i });
    await waitForText(ada.page, history.locator(`tr[data-call-id="${callId}"]`), 'Visitor');
    await screenshot(ada.page, 'dashboard-history');
    const details = await waitForCall(app, callId, (d) => d.call.endedAt !== null);
    expect(details.call).toMatchObject({ agentId: 'ada', endReason: 'hangup', connectedAt: expect.any(Number) });
  }, 60_000);

  it('shows Connecting on both sides while the relay is down, and connects once it is back', async () => {
    const app = await suite.startApp();
    const visitor = await openVisitor(suite.browser, app);
    const ada = await openAgent(suite.browser, app, 'ada');
    await requestCall(visitor);
    await acceptButton(ada.page).waitFor();

    // Media only flows through the relay: without it the accepted call cannot get past connecting.
    await suite.turn.stop();
    try {
      await acceptButton(ada.page).click();
      await Promise.all([status(visitor.page, TEXT.connecting('ada')), status(ada.page, 'Connecting to Visitor…')]);
      await connectionIndicator(ada.page, 'amber', 'Connecting');
      await Promise.all([ownCameraShowing(visitor.page), ownCameraShowing(ada.page)]);
      await screenshot(visitor.page, 'widget-connecting');
      await screenshot(ada.page, 'dashboard-connecting');
      expect(await hangUpButton(visitor.page).isVisible()).toBe(true);
    } finally {
      await suite.turn.start();
    }

    // Chromium keeps retrying its relay allocation for a while, so the same call connects without a new request.
    await Promise.all([waitForMediaFlowing(visitor.page), waitForMediaFlowing(ada.page)]);
    await Promise.all([statusCleared(visitor.page, TEXT.connecting('ada')), statusCleared(ada.page, 'Connecting to Visitor…')]);
    await connectionIndicator(ada.page, 'green', 'Connection good');
  }, 60_000);
});
