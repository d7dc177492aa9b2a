/**
 * The steps people take in the browser scenarios, written as what they click and what they read.
 */
import type { Page } from 'playwright-core';
import { waitForMediaFlowing } from './browser.ts';
import { status, waitForText, type Person } from './e2e.ts';
import { DEMO, type DemoAgent } from './server.ts';

export const TEXT = {
  searching: 'Finding an agent…',
  ringing: (agent: DemoAgent) => `Ringing ${DEMO[agent].name}…`,
  reassigning: 'Your agent is unavailable, connecting you to another agent…',
  connecting: (agent: DemoAgent) => `Connecting to ${DEMO[agent].name}…`,
  reconnecting: /Connection problem, reconnecting… \(attempt [123] of 3\)/,
  /** What one person reads while the other's socket is gone: `name` is the agent's, or the visitor's. */
  waitingFor: (name: string) => `Connection lost, waiting for ${name}…`,
  offline: "You're offline; we'll reconnect when your network is back",
  failed: "We couldn't reconnect the call",
  reconnectTimeout: 'The connection could not be restored in time, so the call has ended',
  noAgents: 'No agents are available right now',
  queued: (position: number) => `You are number ${position} in line`,
} as const;

/** The dashboard's connection indicator: its colour, and the words that say the same to someone who cannot see it. */
export const connectionIndicator = (page: Page, colour: 'green' | 'amber' | 'red', label: string, timeoutMs?: number) =>
  waitForText(page, page.locator(`[data-connection="${colour}"]`), label, timeoutMs);

export const acceptButton = (page: Page) => page.getByRole('button', { name: 'Accept' });
export const rejectButton = (page: Page) => page.getByRole('button', { name: 'Reject' });
export const hangUpButton = (page: Page) => page.getByRole('button', { name: 'Hang up' });

export async function requestCall(visitor: Person): Promise<void> {
  await visitor.page.getByRole('button', { name: 'Call an agent' }).click();
}

/** The agent whose dashboard is ringing, among those given; fails when none rings in time. */
export async function ringingAgent(agents: Partial<Record<DemoAgent, Person>>, timeoutMs = 10_000): Promise<DemoAgent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const [name, person] of Object.entries(agents) as [DemoAgent, Person][]) {
      if (await acceptButton(person.page).isVisible()) return name;
    }
    if (Date.now() > deadline) throw new Error(`no dashboard rang among ${Object.keys(agents).join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** From an agent's accept to both people seeing and hearing each other. */
export async function acceptAndConnect(visitor: Person, agent: Person): Promise<void> {
  await acceptButton(agent.page).click();
  await Promise.all([waitForMediaFlowing(visitor.page), waitForMediaFlowing(agent.page)]);
  await Promise.all([hangUpButton(visitor.page).waitFor(), hangUpButton(agent.page).waitFor()]);
}

/** A call from the widget's first click to two-way media, with `agent` the only one free to take it. */
export async function connectCall(visitor: Person, agent: Person, agentName: DemoAgent): Promise<void> {
  await requestCall(visitor);
  await status(visitor.page, TEXT.ringing(agentName));
  await acceptButton(agent.page).waitFor({ timeout: 10_000 });
  await acceptAndConnect(visitor, agent);
}

/** Resolves once no status region shows `text` any more. */
export async function statusCleared(page: Page, text: string | RegExp, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const shown = await page.getByRole('status').allInnerTexts();
    if (!shown.some((line) => (typeof text === 'string' ? line.includes(text) : text.test(line)))) return;
    if (Date.now() > deadline) throw new Error(`${page.url()} still shows ${String(text)}: ${JSON.stringify(shown)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
