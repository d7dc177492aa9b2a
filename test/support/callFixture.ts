/**
 * Test support for the client's suites: a real RTCPeerConnection from `@roamhq/wrtc`, recorded as the
 * clients create it so tests can look at the real connection, and the steps that bring a visitor and an
 * agent client into a call on a real server.
 */
import { createRequire } from 'node:module';
import { waitFor, type InspectionEvent } from 'xstate';
import { peerConnectionPhase } from '@callchart/machines';
import {
  createAgentClient,
  createVisitorClient,
  type AgentClient,
  type ClientError,
  type ConnectionOptions,
  type RtcEnvironment,
  type VisitorClient,
} from '@callchart/client';
import { agentToken, visitorToken, type TestServer } from './server.ts';

// The package is CommonJS with a plain `module.exports` object, which Node's ESM loader cannot always
// split into named exports.
const wrtc = createRequire(import.meta.url)('@roamhq/wrtc') as typeof import('@roamhq/wrtc');

export interface RecordedPeerConnection extends RTCPeerConnection {
  /** The description types set locally and the `restartIce()` calls, in call order. */
  readonly steps: string[];
}

export interface RecordedRtc {
  rtc: RtcEnvironment;
  /** Every connection the client created, oldest first. */
  created: RecordedPeerConnection[];
}

/** wrtc's RTCPeerConnection, unchanged except that each instance and some of its calls are recorded. */
export function recordedRtc(): RecordedRtc {
  const created: RecordedPeerConnection[] = [];
  const Base = wrtc.RTCPeerConnection as unknown as typeof RTCPeerConnection;
  class Recorded extends Base implements RecordedPeerConnection {
    readonly steps: string[] = [];
    constructor(configuration?: RTCConfiguration) {
      super(configuration);
      created.push(this);
    }
    override setLocalDescription(description?: RTCLocalSessionDescriptionInit): Promise<void> {
      this.steps.push(`setLocalDescription:${description?.type ?? 'implicit'}`);
      return super.setLocalDescription(description);
    }
    override restartIce(): void {
      this.steps.push('restartIce');
      super.restartIce();
    }
  }
  return { rtc: { RTCPeerConnection: Recorded }, created };
}

/** What one client's actors did, read from their inspection events. */
export class Recorder {
  readonly inspections: InspectionEvent[] = [];
  readonly errors: ClientError[] = [];
  readonly inspect = (event: InspectionEvent) => {
    this.inspections.push(event);
  };
  readonly onError = (error: ClientError) => {
    this.errors.push(error);
  };

  /** Messages put on the wire by the signaling machine's `transmit`, in order. */
  transmitted(): { event: string; payload: unknown }[] {
    return this.inspections.flatMap((inspection) => {
      if (inspection.type !== '@xstate.action' || inspection.action.type !== 'transmit') return [];
      return [inspection.action.params as { event: string; payload: unknown }];
    });
  }

  /** Events of `type` that any of the client's actors received, in order. */
  received(type: string): unknown[] {
    return this.inspections.flatMap((inspection) =>
      inspection.type === '@xstate.event' && inspection.event.type === type ? [inspection.event] : [],
    );
  }
}

/** Short enough that a reconnect takes tens of milliseconds rather than seconds. */
export const FAST_SIGNALING: ConnectionOptions['signaling'] = { timings: { initialDelay: 50, maxDelay: 400, maxJitter: 50 } };

export interface CallPair {
  agent: AgentClient;
  visitor: VisitorClient;
  agentRtc: RecordedRtc;
  visitorRtc: RecordedRtc;
  agentLog: Recorder;
  visitorLog: Recorder;
  callId: string;
  visitorId: string;
  stop(): void;
}

const WAIT = { timeout: 10_000 };

/** An agent (Ada) and a visitor, both with real clients, in a call whose media is connected. */
export async function connectCall(t: TestServer, options: { signaling?: ConnectionOptions['signaling'] } = {}): Promise<CallPair> {
  const agentRtc = recordedRtc();
  const visitorRtc = recordedRtc();
  const agentLog = new Recorder();
  const visitorLog = new Recorder();
  const signaling = options.signaling ?? FAST_SIGNALING;
  const agent = createAgentClient({
    url: t.url,
    token: await agentToken(t.url, 'ada'),
    rtc: agentRtc.rtc,
    inspect: agentLog.inspect,
    onError: agentLog.onError,
    signaling,
  });
  const session = await visitorToken(t.url);
  const visitor = createVisitorClient({
    url: t.url,
    token: session.token,
    pool: 'support',
    rtc: visitorRtc.rtc,
    inspect: visitorLog.inspect,
    onError: visitorLog.onError,
    signaling,
  });
  const stop = () => {
    visitor.stop();
    agent.stop();
  };
  try {
    await Promise.all([
      waitFor(agent.signaling, (s) => s.matches({ connected: 'ready' }) && s.context.resumeToken !== null, WAIT),
      waitFor(visitor.signaling, (s) => s.matches({ connected: 'ready' }) && s.context.resumeToken !== null, WAIT),
    ]);
    agent.call.send({ type: 'login' });
    visitor.call.send({ type: 'call.request' });
    await waitFor(agent.call, (s) => s.matches('ringing'), WAIT);
    agent.call.send({ type: 'accept' });
    await Promise.all([
      waitFor(agent.call, (s) => s.matches('inCall'), WAIT),
      waitFor(visitor.call, (s) => s.matches('inCall'), WAIT),
    ]);
  } catch (error) {
    stop();
    throw error;
  }
  const callId = visitor.call.getSnapshot().context.callId!;
  return { agent, visitor, agentRtc, visitorRtc, agentLog, visitorLog, callId, visitorId: session.visitorId, stop };
}

/** The media child's state value, for assertions. */
/** The phase of the client's media child: `'connected'` whatever its media watch is doing. */
export function mediaState(client: AgentClient | VisitorClient): unknown {
  const media = client.call.getSnapshot().children.media?.getSnapshot();
  return media ? peerConnectionPhase(media.value) : undefined;
}

/** The ICE username fragment a description uses. */
export function ufrag(description: RTCSessionDescription | null): string | null {
  return description ? (/a=ice-ufrag:(\S+)/.exec(description.sdp)?.[1] ?? null) : null;
}
