/**
 * One RTCPeerConnection for one call: created with the ICE servers the server handed out in
 * `call.accepted`, carrying the local camera and microphone when there are any, and exchanging
 * offers, answers and candidates through the signaling outbox. The offerer (the agent) sends the
 * offers; the answerer answers them, restart offers included, so the two peers never glare.
 */
import type { ClientMessage, IceCandidate, MediaRole, PeerConnectionEvent, ServerPayload } from '@callchart/machines';
import { ClientError, type ErrorListener } from './errors.ts';
import { all, listen } from './on.ts';
import { createMediaProbe } from './mediaProbe.ts';
import { bindPeerConnection, peerConnectionEffects, type PeerConnectionEffects } from './peerConnection.adapter.ts';

/** What the page supplies: the browser's globals, or `@roamhq/wrtc`'s in Node. */
export interface RtcEnvironment {
  RTCPeerConnection: new (configuration?: RTCConfiguration) => RTCPeerConnection;
  /** Absent where there are no devices (Node, tests): the call then runs on its data channel alone. */
  getUserMedia?: (constraints: MediaStreamConstraints) => Promise<MediaStream>;
}

export type CallAccepted = Pick<ServerPayload<'call.accepted'>, 'callId' | 'role' | 'iceServers' | 'iceTransportPolicy'>;

/** The messages a media session puts on the wire, each with its payload. */
export type MediaSignal = ClientMessage<'signal.offer' | 'signal.answer' | 'signal.iceRestart' | 'signal.candidate' | 'signal.restartRequest'>;

export type RelayedSignal =
  | { event: 'signal.offer' | 'signal.answer' | 'signal.iceRestart'; payload: ServerPayload<'signal.offer'> }
  | { event: 'signal.candidate'; payload: ServerPayload<'signal.candidate'> };

export interface MediaSessionOptions {
  rtc: RtcEnvironment;
  accepted: CallAccepted;
  /** Puts one message in the signaling outbox. */
  signal: (message: MediaSignal) => void;
  /** Receives the connection's `ice.*` and `media.*` events for the call machine. */
  deliver: (event: Exclude<PeerConnectionEvent, { type: 'hangup' }>) => void;
  onStreams: () => void;
  onError: ErrorListener;
  constraints?: MediaStreamConstraints;
}

export interface MediaSession {
  readonly callId: string;
  readonly role: MediaRole;
  readonly pc: RTCPeerConnection;
  readonly effects: PeerConnectionEffects;
  localStream(): MediaStream | null;
  remoteStream(): MediaStream | null;
  /** Applies an offer, answer, restart offer or candidate relayed from the other peer. */
  receive(message: RelayedSignal): void;
  setMuted(muted: boolean): void;
  close(): void;
}

const defaultConstraints: MediaStreamConstraints = { audio: true, video: true };

function candidateJson(candidate: RTCIceCandidate): IceCandidate {
  // Built field by field: the protocol's schema is strict, and some implementations' toJSON() carry
  // more than these four fields.
  const json: IceCandidate = { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex };
  if (candidate.usernameFragment) json.usernameFragment = candidate.usernameFragment;
  return json;
}

export function startMediaSession(options: MediaSessionOptions): MediaSession {
  const { accepted, signal, onError } = options;
  const { callId, role } = accepted;
  const pc = new options.rtc.RTCPeerConnection({
    iceServers: accepted.iceServers,
    ...(accepted.iceTransportPolicy ? { iceTransportPolicy: accepted.iceTransportPolicy } : {}),
  });
  // Negotiated on both sides, so it needs no offer of its own; it keeps ICE running when neither peer
  // has a device to send, and carries the media probe's echoes when nothing else arrives.
  const channel = pc.createDataChannel('callchart', { negotiated: true, id: 0 });
  const probe = createMediaProbe(pc, channel, options.deliver);

  let local: MediaStream | null = null;
  let remote: MediaStream | null = null;
  let closed = false;
  // Candidates that arrive before the description they belong to; applied once it is set.
  let pendingCandidates: IceCandidate[] = [];
  let queue: Promise<void> = Promise.resolve();

  const run = (step: string, operation: () => Promise<void> | void) => {
    queue = queue
      .then(async () => {
        if (!closed) await operation();
      })
      .catch((cause: unknown) => {
        if (closed) return;
        onError(new ClientError('negotiation-failed', 'The call connection could not be set up.', { event: step, cause }));
      });
  };

  const sendSdp = (event: 'signal.offer' | 'signal.answer' | 'signal.iceRestart') => {
    if (pc.localDescription) signal({ event, payload: { callId, sdp: pc.localDescription.sdp } });
  };

  const applyPendingCandidates = async () => {
    const candidates = pendingCandidates;
    pendingCandidates = [];
    for (const candidate of candidates) await pc.addIceCandidate(candidate);
  };

  const unbind = all([
    probe.stop,
    bindPeerConnection(pc, options.deliver),
    listen(pc, 'icecandidate', (event) => {
      const { candidate } = event as RTCPeerConnectionIceEvent;
      // A null candidate only marks the end of gathering; the other peer needs nothing for it.
      if (candidate) signal({ event: 'signal.candidate', payload: { callId, candidate: candidateJson(candidate) } });
    }),
    listen(pc, 'track', (event) => {
      const [stream] = (event as RTCTrackEvent).streams;
      if (stream && stream !== remote) {
        remote = stream;
        options.onStreams();
      }
    }),
  ]);

  const getUserMedia = options.rtc.getUserMedia;
  if (getUserMedia) {
    run('getUserMedia', async () => {
      try {
        local = await getUserMedia(options.constraints ?? defaultConstraints);
      } catch (cause) {
        onError(new ClientError('media-unavailable', 'Your camera or microphone could not be started.', { event: 'getUserMedia', cause }));
        return;
      }
      if (closed) return;
      for (const track of local.getTracks()) pc.addTrack(track, local);
      options.onStreams();
    });
  }

  if (role === 'offerer') {
    run('createOffer', async () => {
      await pc.setLocalDescription(await pc.createOffer());
      sendSdp('signal.offer');
    });
  }

  return {
    callId,
    role,
    pc,
    effects: {
      ...peerConnectionEffects(pc, {
        run,
        sendIceRestart: (sdp) => signal({ event: 'signal.iceRestart', payload: { callId, sdp } }),
      }),
      sendRestartRequest: () => signal({ event: 'signal.restartRequest', payload: { callId } }),
      startMediaProbe: probe.start,
      probeMedia: probe.probe,
    },
    localStream: () => local,
    remoteStream: () => remote,
    receive(message) {
      switch (message.event) {
        case 'signal.offer':
        case 'signal.iceRestart':
          run(`answer ${message.event}`, async () => {
            await pc.setRemoteDescription({ type: 'offer', sdp: message.payload.sdp });
            await applyPendingCandidates();
            await pc.setLocalDescription(await pc.createAnswer());
            sendSdp('signal.answer');
          });
          return;
        case 'signal.answer':
          run('apply answer', async () => {
            // An answer to an offer that was rolled back since has nothing left to answer.
            if (pc.signalingState !== 'have-local-offer') return;
            await pc.setRemoteDescription({ type: 'answer', sdp: message.payload.sdp });
            await applyPendingCandidates();
          });
          return;
        case 'signal.candidate':
          run('addIceCandidate', async () => {
            if (!pc.remoteDescription) {
              pendingCandidates.push(message.payload.candidate);
              return;
            }
            await pc.addIceCandidate(message.payload.candidate);
          });
          return;
      }
    },
    setMuted(muted) {
      for (const track of local?.getAudioTracks() ?? []) track.enabled = !muted;
    },
    close() {
      if (closed) return;
      closed = true;
      unbind();
      pc.close();
      for (const track of local?.getTracks() ?? []) track.stop();
      local = null;
      remote = null;
      options.onStreams();
    },
  };
}
