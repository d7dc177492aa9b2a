/**
 * Both clients' machines reported to the live inspector by a real server with INSPECT_CLIENTS on, read back
 * through the `/inspect` namespace an inspector page uses.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { waitFor } from 'xstate';
import { peerConnectionPhase, REDACTED } from '@callchart/machines';
import type { ActorView, TimelineEntry } from '../../../server/src/inspection.ts';
import { agentToken, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { connectCall, mediaState, type CallPair } from '../../../test/support/callFixture.ts';

let t: TestServer | undefined;
let pair: CallPair | null = null;
let inspector: Socket | null = null;
afterEach(async () => {
  inspector?.disconnect();
  inspector = null;
  pair?.stop();
  pair = null;
  await t?.close();
  t = undefined;
});

async function subscribe(url: string, requestId: string): Promise<{ entries: TimelineEntry[]; actors: () => ActorView[] }> {
  const socket = io(`${url}/inspect`, { auth: { token: await agentToken(url, 'inspector') }, transports: ['websocket'], forceNew: true, reconnection: false });
  inspector = socket;
  const entries: TimelineEntry[] = [];
  let actors: ActorView[] = [];
  socket.on('inspect.replay', (replay: { entries: TimelineEntry[]; actors: ActorView[] }) => {
    entries.push(...replay.entries);
    actors = replay.actors;
  });
  socket.on('inspect.entry', (entry: TimelineEntry) => entries.push(entry));
  await socket.timeout(5_000).emitWithAck('inspect.subscribe', { requestId });
  return { entries, actors: () => actors };
}

const stateOf = (entries: TimelineEntry[], actorId: string) => entries.filter((entry) => entry.actorId === actorId).at(-1)?.state;

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('client inspection from the real clients', () => {
  it('files both legs’ machines under the call’s request, sanitized, beside the server’s, when the server takes them', async () => {
    t = await startTestServer({ INSPECT_CLIENTS: 'on' });
    pair = await connectCall(t);
    const { agent, visitor } = pair;
    await waitFor(visitor.call, () => mediaState(visitor) === 'connected');
    await waitFor(agent.call, () => mediaState(agent) === 'connected');
    const [live] = t.server.switchboard.live();
    const { entries, actors } = await subscribe(t.url, live!.requestId);

    // The page opened mid-call: every client actor's current state is there from the attach, not only its
    // transitions since.
    const expected = {
      'visitor:visitorCall': (state: unknown) => JSON.stringify(state).includes('inCall'),
      'visitor:peerConnection': (state: unknown) => peerConnectionPhase(state) === 'connected',
      'visitor:signaling': (state: unknown) => JSON.stringify(state) === JSON.stringify({ connected: { ready: 'trusted' } }),
      'agent:agent': (state: unknown) => JSON.stringify(state).includes('inCall'),
      'agent:peerConnection': (state: unknown) => peerConnectionPhase(state) === 'connected',
      'agent:signaling': (state: unknown) => JSON.stringify(state) === JSON.stringify({ connected: { ready: 'trusted' } }),
    };
    await until(() => Object.entries(expected).every(([actorId, matches]) => matches(stateOf(entries, actorId))), 'every client actor');
    const sides = new Map(actors().map((view) => [view.actorId, view.side]));
    expect(sides.get('visitor:peerConnection')).toBe('visitor');
    expect(sides.get('agent:agent')).toBe('agent');
    expect([...sides.values()]).toContain('server');

    // A transition shows up live, and no session description or token ever reached the inspector.
    visitor.call.send({ type: 'mute.toggle' });
    await until(() => entries.some((entry) => entry.actorId === 'visitor:visitorCall' && entry.event.type === 'mute.toggle'), 'the visitor’s mute');
    const text = JSON.stringify(entries);
    expect(text).not.toMatch(/v=0|a=ice-ufrag|"eyJ/);
    expect(entries.some((entry) => JSON.stringify(entry.event).includes(REDACTED) || JSON.stringify(entry.context).includes(REDACTED))).toBe(true);
    expect(entries.every((entry) => entry.requestId === live!.requestId)).toBe(true);
  });

  it('reports nothing while the server does not take reports', async () => {
    t = await startTestServer();
    pair = await connectCall(t);
    const [live] = t.server.switchboard.live();
    const { entries } = await subscribe(t.url, live!.requestId);
    pair.visitor.call.send({ type: 'mute.toggle' });
    await waitFor(pair.visitor.call, (s) => s.context.muted);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.filter((entry) => entry.side !== 'server')).toEqual([]);
    expect([...pair.agentLog.errors, ...pair.visitorLog.errors]).toEqual([]);
  });
});
