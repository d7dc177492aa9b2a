/**
 * What the dashboard shows for an agent snapshot (DESIGN §5). Pure, so the dashboard holds no state of
 * its own. The Reconnecting overlay and the failure message are the visitor's, word for word.
 */
import type { SnapshotFrom } from 'xstate';
import type { AgentMachine, AgentPresence } from './agent.machine.ts';
import { mediaReconnectingOverlay, visitorCallTexts, type CallMediaSnapshot } from './visitorCall.view.ts';

export type AgentControl = 'login' | 'available' | 'away' | 'logout' | 'accept' | 'reject' | 'hangup' | 'dismiss';

export type ConnectionIndicator = 'green' | 'amber' | 'red';

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
  visitorLost: 'Connection lost, waiting for the visitor…',
  mediaFailed: visitorCallTexts.mediaFailed,
} as const;

/** Whole seconds left on a ring at `now`, for the countdown; never negative. */
export function ringSecondsLeft(expiresAt: number, now: number): number {
  return Math.max(0, Math.ceil((expiresAt - now) / 1000));
}

function mediaIndicator(media: CallMediaSnapshot | undefined): ConnectionIndicator {
  if (!media) return 'amber';
  if (media.status === 'done') return media.output?.outcome === 'failed' ? 'red' : 'amber';
  return media.value === 'connected' ? 'green' : 'amber';
}

type AgentSnapshot = SnapshotFrom<AgentMachine>;

export function agentView(snapshot: AgentSnapshot): AgentView {
  const { context } = snapshot;
  const idle = { ringing: null, connection: null, overlay: null, message: null, showVideo: false };

  if (snapshot.matches('offline')) return { ...idle, presence: 'offline', controls: ['login'] };
  if (snapshot.matches('available')) return { ...idle, presence: 'available', controls: ['away', 'logout'] };
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
    const paused = snapshot.matches({ inCall: { peer: 'paused' } });
    const indicator = mediaIndicator(media);
    return {
      ...idle,
      presence: 'busy',
      connection: paused && indicator === 'green' ? 'amber' : indicator,
      overlay: mediaReconnectingOverlay(media),
      message: paused ? agentTexts.visitorLost : null,
      controls: ['hangup'],
      showVideo: true,
    };
  }
  // callFailed
  return { ...idle, presence: 'busy', connection: 'red', message: agentTexts.mediaFailed, controls: ['dismiss'] };
}
