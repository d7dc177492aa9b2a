/**
 * A visitor client and an agent client against the real server, with real sockets and real
 * RTCPeerConnections (`@roamhq/wrtc`) whose ICE runs over loopback for their data channel.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import { startTestServer, stored, type TestServer } from '../../../test/support/server.ts';
import { connectCall, mediaState, type CallPair } from '../../../test/support/callFixture.ts';

let t: TestServer;
let pair: CallPair | null = null;
beforeEach(async () => {
  t = await startTestServer();
});
afterEach(async () => {
  pair?.stop();
  pair = null;
  await t.close();
});

describe('a call between the visitor and agent clients', () => {
  it('connects real peer connections, reaches inCall on both sides, and a hang-up ends both', async () => {
    pair = await connectCall(t);
    const { agent, visitor, agentRtc, visitorRtc, callId } = pair;

    await waitFor(agent.call, () => mediaState(agent) === 'connected');
    await waitFor(visitor.call, () => mediaState(visitor) === 'connected');
    expect(agent.call.getSnapshot().context.callId).toBe(callId);
    expect(agentRtc.created).toHaveLength(1);
    expect(visitorRtc.created).toHaveLength(1);
    expect(agentRtc.created[0]!.connectionState).toBe('connected');
    expect(visitorRtc.created[0]!.connectionState).toBe('connected');
    // The offer came from the agent, the answer from the visitor.
    expect(pair.agentLog.transmitted().map((m) => m.event)).toContain('signal.offer');
    expect(pair.visitorLog.transmitted().map((m) => m.event)).toContain('signal.answer');
    expect(pair.visitorLog.transmitted().map((m) => m.event)).not.toContain('signal.offer');
    // Both legs told the server their media is up.
    for (const log of [pair.agentLog, pair.visitorLog]) {
      expect(log.transmitted()).toContainEqual({ event: 'call.media', payload: { callId, state: 'connected' } });
    }

    visitor.call.send({ type: 'hangup' });
    await waitFor(agent.call, (s) => s.matches('available') && s.context.lastCallEnd !== null);
    expect(visitor.call.getSnapshot().value).toBe('ended');
    expect(visitor.call.getSnapshot().context.endReason).toBe('hangup');
    expect(agent.call.getSnapshot().context.lastCallEnd).toMatchObject({ callId, reason: 'visitor-hangup' });
    expect(agentRtc.created[0]!.connectionState).toBe('closed');
    expect(visitorRtc.created[0]!.connectionState).toBe('closed');
    expect(await stored(t.server, (store) => store.calls.get(callId))).toMatchObject({ state: 'ended', endReason: 'hangup' });
    expect([...pair.agentLog.errors, ...pair.visitorLog.errors]).toEqual([]);
  });
});
