/**
 * ICE restart through the adapters, with real wrtc peer connections in a call on the real server.
 *
 * A true ICE outage cannot be made in Node without a relay to take away, so these restarts are forced
 * by the machine: the test tells a call actor `ice.failed` while the connection is in fact healthy, and
 * the peerConnection child runs one attempt exactly as after a real failure. What is real is everything
 * the attempt does: the rollback, `restartIce()`, a new offer with new ICE credentials relayed by the
 * server, the other side's answer, and the connection reporting `connected` again.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import { startTestServer, type TestServer } from '../../../test/support/server.ts';
import { connectCall, mediaState, ufrag, type CallPair } from '../../../test/support/callFixture.ts';

let t: TestServer;
let pair: CallPair | null = null;
beforeEach(async () => {
  t = await startTestServer({ RECONNECTION_TIMEOUT_MS: '20000' });
});
afterEach(async () => {
  pair?.stop();
  pair = null;
  await t.close();
});

const events = (log: CallPair['agentLog'], event: string) => log.transmitted().filter((m) => m.event === event);

describe('ICE restart', () => {
  it('the offerer rolls back a lost offer, restarts ICE, sends one restart offer, and is connected again (restart forced by the machine, no network fault)', async () => {
    pair = await connectCall(t);
    const { agent, visitor, callId } = pair;
    const agentPc = pair.agentRtc.created[0]!;
    const visitorPc = pair.visitorRtc.created[0]!;
    const before = ufrag(visitorPc.remoteDescription);

    // A restart offer that never reached the visitor, as when signaling was down: the agent's connection
    // is left in have-local-offer.
    await agentPc.setLocalDescription(await agentPc.createOffer());
    expect(agentPc.signalingState).toBe('have-local-offer');
    const stepsBefore = agentPc.steps.length;

    agent.call.send({ type: 'ice.failed', at: Date.now() });
    expect(mediaState(agent)).toEqual({ reconnecting: 'attempting' });

    await waitFor(agent.call, () => mediaState(agent) === 'connected', { timeout: 8_000 });
    await expect.poll(() => agentPc.signalingState).toBe('stable');
    await expect.poll(() => ufrag(visitorPc.remoteDescription)).not.toBe(before);
    expect(agentPc.steps.slice(stepsBefore)).toEqual(['setLocalDescription:rollback', 'restartIce', 'setLocalDescription:offer']);
    expect(events(pair.agentLog, 'signal.iceRestart')).toHaveLength(1);
    expect(events(pair.visitorLog, 'signal.iceRestart')).toEqual([]);
    // The visitor answered the restart offer with new credentials of its own.
    expect(events(pair.visitorLog, 'signal.answer')).toHaveLength(2);
    expect(ufrag(agentPc.remoteDescription)).toBe(ufrag(visitorPc.localDescription));
    expect(agentPc.connectionState).toBe('connected');
    expect(visitorPc.connectionState).toBe('connected');

    // The server heard the whole attempt: reconnecting, then connected with its telemetry.
    expect(events(pair.agentLog, 'call.media').map((m) => m.payload)).toEqual([
      { callId, state: 'connected' },
      { callId, state: 'reconnecting', attempt: 1 },
      { callId, state: 'connected' },
    ]);
    await expect.poll(async () => (await t.server.store.telemetry.forCall(callId)).filter((r) => r.kind === 'reconnection-attempt')).toEqual([
      expect.objectContaining({ leg: 'agent', outcome: 'recovered' }),
    ]);
    await expect.poll(() => JSON.stringify(t.server.switchboard.callSnapshot(callId)?.value)).toContain('"live"');
    expect(visitor.call.getSnapshot().matches('inCall')).toBe(true);
    expect([...pair.agentLog.errors, ...pair.visitorLog.errors]).toEqual([]);
  });

  it('the answerer restarts its own ICE agent but never sends an offer (restart forced by the machine, no network fault)', async () => {
    pair = await connectCall(t);
    const { visitor, callId } = pair;
    const visitorPc = pair.visitorRtc.created[0]!;
    const stepsBefore = visitorPc.steps.length;

    visitor.call.send({ type: 'ice.failed', at: Date.now() });
    expect(mediaState(visitor)).toEqual({ reconnecting: 'attempting' });
    await expect.poll(() => visitorPc.steps.slice(stepsBefore)[0]).toBe('restartIce');
    // Nothing to roll back, no offer: the restart offer is the offerer's alone, so the two never glare.
    expect(visitorPc.signalingState).toBe('stable');
    expect(events(pair.visitorLog, 'signal.iceRestart')).toEqual([]);
    expect(events(pair.visitorLog, 'signal.offer')).toEqual([]);
    await expect.poll(() => events(pair!.visitorLog, 'call.media').map((m) => m.payload)).toContainEqual({
      callId,
      state: 'reconnecting',
      attempt: 1,
    });
    // The visitor asks for an offer instead of waiting for the agent to notice; the agent acts on it at
    // once. The visitor's socket never left, so the agent is not told it is gone.
    await expect.poll(() => events(pair!.visitorLog, 'signal.restartRequest').map((m) => m.payload)).toEqual([{ callId }]);
    // Its attempt may be over as soon as it began: media never stopped, and media seen is the recovery.
    await expect.poll(() => events(pair!.agentLog, 'call.media').map((m) => m.payload)).toContainEqual({ callId, state: 'reconnecting', attempt: 1 });
    expect(pair.agent.call.getSnapshot().matches({ inCall: { peer: 'present' } })).toBe(true);
    // The visitor's own attempt ends the same way: media arriving all along proves it.
    await waitFor(visitor.call, () => mediaState(visitor) === 'connected');
  });
});
