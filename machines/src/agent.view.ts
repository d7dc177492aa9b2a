/**
 * What the dashboard shows for an agent snapshot (DESIGN §5). Pure, so the dashboard holds no state of
 * its own. Texts are messages of the agent's catalogue (locales/); the Reconnecting overlay and the
 * failure message are the visitor's, word for word.
 */
import type { SnapshotFrom } from 'xstate';
import type { AgentCallEnd, AgentCallEndReason, AgentMachine, AgentPresence } from './agent.machine.ts';
import { callIndicator, callNotice, type ConnectionIndicator } from './callStatus.ts';
import type { AgentKey, AgentMessage } from './locales/index.ts';

export type AgentControl = 'login' | 'available' | 'away' | 'logout' | 'accept' | 'reject' | 'hangup' | 'dismiss';

export interface AgentRingView {
  requestId: string;
  visitorName: string;
  /** Epoch ms at which the ring counts as unanswered; the countdown runs towards it. */
  expiresAt: number;
}

export interface AgentView {
  /** `busy` from the first ring until the call is over or its failure dismissed. */
  presence: AgentPresence | 'busy';
  ringing: AgentRingView | null;
  /** Only while a call is being set up, running or has just failed. */
  connection: ConnectionIndicator | null;
  overlay: AgentMessage | null;
  message: AgentMessage | null;
  controls: AgentControl[];
  showVideo: boolean;
}

type LastCallKey = AgentKey & `agent.lastCall.${string}`;
type Named = Exclude<LastCallKey, `${string}Unnamed`>;
type Unnamed = LastCallKey & `${string}Unnamed`;

/**
 * After the server ended the last call, until the next ring: how it ended, when the agent did not end
 * it. The sentence without a name is a sentence of its own, as languages word it differently.
 */
const lastCallEnded: Partial<Record<AgentCallEndReason, { named: Named; unnamed: Unnamed }>> = {
  'visitor-hangup': { named: 'agent.lastCall.visitorHangup', unnamed: 'agent.lastCall.visitorHangupUnnamed' },
  'reconnect-timeout': { named: 'agent.lastCall.reconnectTimeout', unnamed: 'agent.lastCall.reconnectTimeoutUnnamed' },
  reassigned: { named: 'agent.lastCall.reassigned', unnamed: 'agent.lastCall.reassignedUnnamed' },
  error: { named: 'agent.lastCall.error', unnamed: 'agent.lastCall.errorUnnamed' },
};

/** Whole seconds left on a ring at `now`, for the countdown; never negative. */
export function ringSecondsLeft(expiresAt: number, now: number): number {
  return Math.max(0, Math.ceil((expiresAt - now) / 1000));
}

type AgentSnapshot = SnapshotFrom<AgentMachine>;

function lastCallMessage(end: AgentCallEnd | null): AgentMessage | null {
  const keys = end ? lastCallEnded[end.reason] : undefined;
  if (!end || !keys) return null;
  return end.visitorName !== null ? { key: keys.named, params: { name: end.visitorName } } : { key: keys.unnamed };
}

export function agentView(snapshot: AgentSnapshot): AgentView {
  const { context } = snapshot;
  const idle = { ringing: null, connection: null, overlay: null, message: null, showVideo: false };

  if (snapshot.matches('offline')) return { ...idle, presence: 'offline', controls: ['login'] };
  if (snapshot.matches('available')) return { ...idle, presence: 'available', message: lastCallMessage(context.lastCallEnd), controls: ['away', 'logout'] };
  if (snapshot.matches('away')) return { ...idle, presence: 'away', controls: ['available', 'logout'] };
  if (snapshot.matches('ringing')) {
    const ringing =
      context.requestId !== null && context.visitorName !== null && context.ringExpiresAt !== null
        ? { requestId: context.requestId, visitorName: context.visitorName, expiresAt: context.ringExpiresAt }
        : null;
    return { ...idle, presence: 'busy', ringing, controls: ['accept', 'reject'] };
  }
  if (snapshot.matches('connecting')) {
    return {
      ...idle,
      presence: 'busy',
      connection: 'amber',
      message: context.visitorName ? { key: 'call.connecting', params: { name: context.visitorName } } : null,
      controls: ['hangup'],
      showVideo: true,
    };
  }
  if (snapshot.matches('inCall')) {
    const media = snapshot.children.media?.getSnapshot();
    const peer = { away: snapshot.matches({ inCall: { peer: 'away' } }), name: context.visitorName, role: 'visitor' } as const;
    return {
      ...idle,
      presence: 'busy',
      connection: callIndicator(media, peer),
      overlay: callNotice(media, peer),
      controls: ['hangup'],
      showVideo: true,
    };
  }
  // callFailed
  return { ...idle, presence: 'busy', connection: 'red', message: { key: 'call.mediaFailed' }, controls: ['dismiss'] };
}
