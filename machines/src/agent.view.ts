/**
 * What the dashboard shows for an agent snapshot (DESIGN §5). Pure, so the dashboard holds no state of
 * its own. The Reconnecting overlay and the failure message are the visitor's, word for word.
 */
import type { SnapshotFrom } from 'xstate';
import type { AgentCallEnd, AgentCallEndReason, AgentMachine, AgentPresence } from './agent.machine.ts';
import { callIndicator, callNotice, type ConnectionIndicator } from './callStatus.ts';
import { visitorCallTexts } from './visitorCall.view.ts';

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
  overlay: string | null;
  message: string | null;
  controls: AgentControl[];
  showVideo: boolean;
}

export const agentTexts = {
  connecting: visitorCallTexts.connecting,
  mediaFailed: visitorCallTexts.mediaFailed,
  /** After the server ended the last call, until the next ring: how it ended, when the agent did not end it. */
  lastCallEnded: {
    'visitor-hangup': (visitor: string) => `${visitor} ended the call`,
    'reconnect-timeout': (visitor: string) => `The call with ${visitor} has ended: the connection could not be restored in time`,
    reassigned: (visitor: string) => `${visitor} was connected to another agent while you were away`,
    error: (visitor: string) => `The call with ${visitor} ended because of an error`,
  },
} as const;

/** Whole seconds left on a ring at `now`, for the countdown; never negative. */
export function ringSecondsLeft(expiresAt: number, now: number): number {
  return Math.max(0, Math.ceil((expiresAt - now) / 1000));
}

type AgentSnapshot = SnapshotFrom<AgentMachine>;

function lastCallMessage(end: AgentCallEnd | null): string | null {
  const texts: Partial<Record<AgentCallEndReason, (visitor: string) => string>> = agentTexts.lastCallEnded;
  const text = end ? texts[end.reason] : undefined;
  return end && text ? text(end.visitorName ?? 'the visitor') : null;
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
      message: context.visitorName ? agentTexts.connecting(context.visitorName) : null,
      controls: ['hangup'],
      showVideo: true,
    };
  }
  if (snapshot.matches('inCall')) {
    const media = snapshot.children.media?.getSnapshot();
    const peer = { away: snapshot.matches({ inCall: { peer: 'away' } }), name: context.visitorName ?? 'the visitor' };
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
  return { ...idle, presence: 'busy', connection: 'red', message: agentTexts.mediaFailed, controls: ['dismiss'] };
}
