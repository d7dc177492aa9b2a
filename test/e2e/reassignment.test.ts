/**
 * Reassignment as a visitor lives it: an agent who vanishes mid-call, an agent who rejects, one who lets
 * it ring out, and nobody left at all.
 */
import { describe, expect, it } from 'vitest';
import { browserSuite } from '../support/browser-suite.ts';
import { acceptAndConnect, acceptButton, connectCall, hangUpButton, rejectButton, requestCall, ringingAgent, TEXT } from '../support/call-steps.ts';
import { openAgent, openVisitor, screenshot, ServerMessageHold, status, visitorCallId, type Person } from '../support/e2e.ts';
import { DEMO, type DemoAgent } from '../support/server.ts';

describe('reassigning a visitor to another agent', () => {
  const suite = browserSuite();

  it('waits for an agent whose page closed mid-call, then connects the visitor to Grace', async () => {
    const app = await suite.startApp({ AGENT_GRACE_MS: '4000' });
    const hold = new ServerMessageHold();
    const visitor = await openVisitor(suite.browser, app, { hold });
    const ada = await openAgent(suite.browser, app, 'ada');
    await connectCall(visitor, ada, 'ada');
    const firstCall = await visitorCallId(visitor.page);
    // Grace logs in only now, so Ada was the one rung first.
    const grace = await openAgent(suite.browser, app, 'grace');

    // The server rings Grace in the same instant it tells the visitor about the reassignment.
    hold.after(/"state":"reassigning"/);
    await ada.context.close();
    await status(visitor.page, TEXT.waitingFor(DEMO.ada.name), 5_000);
    await screenshot(visitor.page, 'widget-agent-lost');
    await status(visitor.page, TEXT.reassigning, 10_000);
    await screenshot(visitor.page, 'widget-reassigning');
    hold.release();
    await status(visitor.page, TEXT.ringing('grace'), 10_000);
    await acceptAndConnect(visitor, grace);
    expect(await visitorCallId(visitor.page)).not.toBe(firstCall);
  }, 60_000);

  it('moves past a rejection and a ring-out to the third agent, and says so when nobody is left', async () => {
    const app = await suite.startApp({ RING_TIMEOUT_MS: '3000', MAX_QUEUE_WAIT_MS: '2500' });
    const visitor = await openVisitor(suite.browser, app);
    const agents: Partial<Record<DemoAgent, Person>> = {};
    for (const name of ['ada', 'grace', 'alan'] as const) agents[name] = await openAgent(suite.browser, app, name);

    await requestCall(visitor);
    const first = await ringingAgent(agents);
    await status(visitor.page, TEXT.ringing(first));
    await rejectButton(agents[first]!.page).click();

    const second = await ringingAgent(without(agents, first));
    await status(visitor.page, TEXT.ringing(second));
    await screenshot(visitor.page, 'widget-reassigning-ringing');
    // No click: the ring runs out on the server's timer.
    const third = await ringingAgent(without(agents, first, second), 6_000);
    await status(visitor.page, TEXT.ringing(third));
    expect(await acceptButton(agents[second]!.page).isVisible()).toBe(false);
    await acceptAndConnect(visitor, agents[third]!);
    await hangUpButton(visitor.page).click();
    await status(visitor.page, 'The call has ended');

    // One steps away and the others log out: either way nobody is free to take the next call.
    const away = agents[third]!.page;
    await away.getByRole('group', { name: 'Presence' }).getByRole('button', { name: 'Away' }).click();
    await away.locator('[aria-pressed="true"]', { hasText: 'Away' }).waitFor();
    await screenshot(away, 'dashboard-away');
    for (const name of [first, second]) {
      await agents[name]!.page.getByRole('button', { name: 'Log out' }).click();
    }
    await requestCall(visitor);
    await status(visitor.page, TEXT.queued(1));
    await screenshot(visitor.page, 'widget-queued');
    await status(visitor.page, TEXT.noAgents, 10_000);
    await visitor.page.getByRole('button', { name: 'Retry' }).waitFor();
    await screenshot(visitor.page, 'widget-no-agents');
  }, 60_000);
});

function without(agents: Partial<Record<DemoAgent, Person>>, ...names: DemoAgent[]): Partial<Record<DemoAgent, Person>> {
  return Object.fromEntries(Object.entries(agents).filter(([name]) => !names.includes(name as DemoAgent)));
}
