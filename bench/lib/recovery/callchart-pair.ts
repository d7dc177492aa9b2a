/**
 * One callchart call, visitor widget and agent dashboard in the real UIs, watched from inside each page:
 * the call actor's state, its media child's state (the peerConnection machine), and inbound RTP bytes,
 * all stamped as they happen so that the bench reads exact times instead of polling for them.
 */
import type { Browser, Page } from 'playwright-core';
import { acceptButton, connectionIndicator, TEXT } from '../../../test/support/call-steps.ts';
import { callDetails, openAgent, openVisitor, status, type App, type CallDetails, type Person } from '../../../test/support/e2e.ts';
import type { ByteSample, StateChange } from './samples.ts';
import { flowingAt, SAMPLING_SCRIPT } from './samples.ts';

// Plain script text, never a serialized function: the bench runs under tsx, whose name-keeping helpers
// do not exist in the page. Subscribing (rather than polling) stamps each transition when it happens.
const RECORDER = `(() => {
  if (window.__recovery) return;
  ${SAMPLING_SCRIPT}
  const states = [];
  const samples = [];
  const last = {};
  const note = (what, value) => {
    if (last[what] === value) return;
    last[what] = value;
    keep(states, { what, value, at: Date.now() });
  };
  const flat = (value) => typeof value === 'string' ? value : Object.entries(value).map(([key, sub]) => { const rest = flat(sub); return rest ? key + '.' + rest : key; }).join(',');
  let callRef = null, callSub = null, mediaRef = null, mediaSub = null;
  // An attempt re-enters the same state, so its number goes into the value to mark each one.
  const onMedia = (snapshot) => {
    const value = flat(snapshot.value);
    note('media', value.startsWith('reconnecting.attempting') ? value + '#' + snapshot.context.attempts : value);
  };
  const onCall = (snapshot) => {
    const value = snapshot.value;
    const top = typeof value === 'string' ? value : Object.keys(value)[0];
    const ctx = snapshot.context || {};
    const reason = ctx.endReason || (ctx.lastCallEnd && ctx.lastCallEnd.reason) || null;
    note('call', (top === 'ended' || top === 'callFailed') && reason ? top + ':' + reason : top);
    const child = snapshot.children && snapshot.children.media;
    if (child === mediaRef) return;
    if (mediaSub) mediaSub.unsubscribe();
    mediaRef = child || null;
    mediaSub = null;
    if (child) {
      onMedia(child.getSnapshot());
      mediaSub = child.subscribe({ next: onMedia, error: () => {} });
    } else {
      note('media', 'none');
    }
  };
  const attach = () => {
    const call = window.callchart && window.callchart.call;
    if (!call || call === callRef) return;
    if (callSub) callSub.unsubscribe();
    callRef = call;
    onCall(call.getSnapshot());
    callSub = call.subscribe({ next: onCall, error: () => {} });
  };
  let busy = false;
  setInterval(async () => {
    attach();
    if (busy) return;
    const pending = window.callchart && window.callchart.getStats && window.callchart.getStats();
    if (!pending) return;
    busy = true;
    try {
      keep(samples, inbound(await pending));
    } catch {
      // The connection was closed between the tick and its stats.
    } finally {
      busy = false;
    }
  }, 100);
  attach();
  window.__recovery = {
    current: () => ({ call: last.call || null, media: last.media || null }),
    read: (since) => ({ states: states.filter((s) => s.at >= since - 1000), samples: samples.filter((s) => s.at >= since - 1000) }),
    callId: () => (callRef && callRef.getSnapshot().context.callId) || null,
  };
})()`;

export interface SideReading {
  states: StateChange[];
  samples: ByteSample[];
}

export interface CallchartReading {
  visitor: SideReading;
  agent: SideReading;
}

/** The last state each side's recorder saw: the call actor's top state (with its end reason) and the media child's. */
export interface Current {
  call: string | null;
  media: string | null;
}

const AGENT = 'ada';
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class CallchartPair {
  private visitor: Person | null = null;
  private agent: Person | null = null;

  constructor(
    private readonly browser: Browser,
    private readonly app: App,
    private readonly log: (line: string) => void,
  ) {}

  private get pages(): { visitor: Page; agent: Page } {
    if (!this.visitor || !this.agent) throw new Error('the callchart pair is not open');
    return { visitor: this.visitor.page, agent: this.agent.page };
  }

  private async current(page: Page): Promise<Current> {
    return (await page.evaluate('window.__recovery.current()')) as Current;
  }

  async state(): Promise<{ visitor: Current; agent: Current }> {
    const { visitor, agent } = this.pages;
    const [v, a] = await Promise.all([this.current(visitor), this.current(agent)]);
    return { visitor: v, agent: a };
  }

  async read(since: number): Promise<CallchartReading> {
    const { visitor, agent } = this.pages;
    const [v, a] = (await Promise.all([visitor.evaluate(`window.__recovery.read(${since})`), agent.evaluate(`window.__recovery.read(${since})`)])) as SideReading[];
    return { visitor: v!, agent: a! };
  }

  async callId(): Promise<string | null> {
    return (await this.pages.visitor.evaluate('window.__recovery.callId()')) as string | null;
  }

  /** The server's record of the current call, which keeps the attempts both clients reported. */
  async serverRecord(): Promise<CallDetails | null> {
    const id = await this.callId();
    return id ? callDetails(this.app, id).catch(() => null) : null;
  }

  /** Both sides in a call with media arriving now; a new call when the last one ended. */
  async ensureFlowing(): Promise<void> {
    if (this.visitor && this.agent) {
      const [v, a] = await Promise.all([this.current(this.visitor.page), this.current(this.agent.page)]);
      if (v.call === 'inCall' && a.call === 'inCall' && (await this.flowingSince(Date.now(), 3_000))) return;
      try {
        await this.callAgain(v, a);
        return;
      } catch (error) {
        this.log(`a new call in the open pages failed (${(error as Error).message.split('\n')[0]}); reopening both`);
      }
    }
    await this.reopen();
  }

  /** Whether both sides see inbound media growing within `timeoutMs` after `since`. */
  private async flowingSince(since: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reading = await this.read(since);
      if (flowingAt([reading.visitor.samples, reading.agent.samples], since) !== null) return true;
      if (Date.now() > deadline) return false;
      await delay(200);
    }
  }

  /** After a failed call: the agent dismisses it, the visitor retries, the agent accepts. */
  private async callAgain(v: Current, a: Current): Promise<void> {
    const { visitor, agent } = this.pages;
    if (a.call?.startsWith('callFailed')) await agent.getByRole('button', { name: 'Dismiss' }).click({ timeout: 5_000 });
    if (v.call === 'inCall' || a.call === 'inCall') throw new Error(`one side is still in the call (visitor ${v.call}, agent ${a.call})`);
    await visitor.getByRole('button', { name: /^(Retry|Call an agent)$/ }).first().click({ timeout: 5_000 });
    await this.accept();
  }

  private async accept(): Promise<void> {
    const { agent } = this.pages;
    await acceptButton(agent).waitFor({ timeout: 15_000 });
    const acceptedAt = Date.now();
    await acceptButton(agent).click();
    if (!(await this.flowingSince(acceptedAt, 20_000))) throw new Error('media did not flow both ways within 20 s of the accept');
  }

  private async reopen(): Promise<void> {
    await this.close();
    this.visitor = await openVisitor(this.browser, this.app);
    this.agent = await openAgent(this.browser, this.app, AGENT);
    await Promise.all([this.visitor.page.evaluate(RECORDER), this.agent.page.evaluate(RECORDER)]);
    await this.visitor.page.getByRole('button', { name: 'Call an agent' }).click();
    await this.accept();
  }

  /** What a person sees after the call failed: the widget's message and the dashboard's red indicator. */
  async failureShown(): Promise<{ visitor: boolean; agent: boolean }> {
    const { visitor, agent } = this.pages;
    const [v, a] = await Promise.all([
      status(visitor, TEXT.failed, 3_000).then(() => true, () => false),
      connectionIndicator(agent, 'red', 'Connection lost', 3_000).then(() => true, () => false),
    ]);
    return { visitor: v, agent: a };
  }

  async close(): Promise<void> {
    const people = [this.visitor, this.agent];
    this.visitor = null;
    this.agent = null;
    for (const person of people) await person?.context.close().catch(() => {});
  }
}
