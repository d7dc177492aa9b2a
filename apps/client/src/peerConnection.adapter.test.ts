/**
 * The peer-connection adapter on its own, against two real wrtc connections joined in this process: the
 * events it sends the machine, and the effects it performs for it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerConnectionEvent } from '@callchart/machines';
import { recordedRtc, ufrag, type RecordedPeerConnection } from '../../../test/support/callFixture.ts';
import { bindPeerConnection, peerConnectionEffects } from './peerConnection.adapter.ts';

const opened: RTCPeerConnection[] = [];
afterEach(() => {
  for (const pc of opened.splice(0)) pc.close();
});

/** Candidates passed straight across, and the negotiated data channel both clients open. */
function wire(a: RTCPeerConnection, b: RTCPeerConnection): void {
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    from.addEventListener('icecandidate', (event) => {
      const { candidate } = event as RTCPeerConnectionIceEvent;
      if (candidate) void to.addIceCandidate(candidate).catch(() => {});
    });
    from.createDataChannel('callchart', { negotiated: true, id: 0 });
  }
}

/** Two connections joined directly, with no server in between. */
async function joinedPair(): Promise<[RecordedPeerConnection, RecordedPeerConnection]> {
  const { rtc, created } = recordedRtc();
  opened.push(new rtc.RTCPeerConnection(), new rtc.RTCPeerConnection());
  const [a, b] = [created[0]!, created[1]!];
  wire(a, b);
  await negotiate(a, b);
  return [a, b];
}

async function negotiate(offerer: RTCPeerConnection, answerer: RTCPeerConnection): Promise<void> {
  await offerer.setLocalDescription(await offerer.createOffer());
  await answerer.setRemoteDescription(offerer.localDescription!);
  await answerer.setLocalDescription(await answerer.createAnswer());
  await offerer.setRemoteDescription(answerer.localDescription!);
}

function inOrder() {
  let queue: Promise<void> = Promise.resolve();
  const failures: unknown[] = [];
  return {
    failures,
    run: (_step: string, operation: () => Promise<void> | void) => {
      queue = queue.then(operation).catch((error: unknown) => void failures.push(error));
    },
    settled: () => queue,
  };
}

describe('bindPeerConnection', () => {
  it('sends ice.connected from connectionState with the injected clock, nothing for closed, and nothing once unsubscribed', async () => {
    const { rtc } = recordedRtc();
    const a = new rtc.RTCPeerConnection();
    const b = new rtc.RTCPeerConnection();
    opened.push(a, b);
    const received: PeerConnectionEvent[] = [];
    const unbind = bindPeerConnection(a, (event) => received.push(event), () => 1234);
    wire(a, b);
    await negotiate(a, b);
    await expect.poll(() => received).toContainEqual({ type: 'ice.connected', at: 1234 });
    expect(received.every((event) => event.type === 'ice.connected')).toBe(true);

    unbind();
    const count = received.length;
    a.close();
    await new Promise((resolve) => setImmediate(resolve));
    expect(received).toHaveLength(count);
  });
});

describe('peerConnectionEffects', () => {
  it('rolls back only a pending local offer', async () => {
    const [a] = await joinedPair();
    const queue = inOrder();
    const effects = peerConnectionEffects(a, { run: queue.run, sendIceRestart: () => {} });

    effects.rollbackLocalOffer();
    await queue.settled();
    expect(a.steps.filter((step) => step.endsWith('rollback'))).toEqual([]);

    await a.setLocalDescription(await a.createOffer());
    effects.rollbackLocalOffer();
    await queue.settled();
    expect(a.signalingState).toBe('stable');
    expect(a.steps.at(-1)).toBe('setLocalDescription:rollback');
    expect(queue.failures).toEqual([]);
  });

  it('restartIce then sendRestartOffer hands over an offer with new ICE credentials, which reconnects the pair', async () => {
    const [a, b] = await joinedPair();
    await expect.poll(() => a.connectionState).toBe('connected');
    const queue = inOrder();
    const offers: string[] = [];
    const effects = peerConnectionEffects(a, { run: queue.run, sendIceRestart: (sdp) => offers.push(sdp) });
    const before = ufrag(a.localDescription);

    effects.rollbackLocalOffer();
    effects.restartIce();
    effects.sendRestartOffer();
    await queue.settled();
    expect(offers).toHaveLength(1);
    expect(/a=ice-ufrag:(\S+)/.exec(offers[0]!)?.[1]).not.toBe(before);
    expect(a.signalingState).toBe('have-local-offer');

    await b.setRemoteDescription({ type: 'offer', sdp: offers[0]! });
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription!);
    expect(ufrag(b.remoteDescription)).toBe(/a=ice-ufrag:(\S+)/.exec(offers[0]!)?.[1]);
    await expect.poll(() => a.connectionState).toBe('connected');
    expect(queue.failures).toEqual([]);
  });
});
