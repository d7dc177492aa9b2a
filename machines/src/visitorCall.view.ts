/**
 * What the widget shows for a visitorCall snapshot (DESIGN §5). Pure, so the widget holds no state of
 * its own and every text can be tested without a browser.
 */
import type { SnapshotFrom } from 'xstate';
import type { PeerConnectionMachine } from './peerConnection.machine.ts';
import type { VisitorCallMachine, VisitorEndReason } from './visitorCall.machine.ts';

export type VisitorControl = 'call' | 'cancel' | 'mute' | 'hangup' | 'retry';

export interface VisitorView {
  message: string | null;
  overlay: string | null;
  controls: VisitorControl[];
  showVideo: boolean;
}

/** Labels of the widget's buttons. */
export const visitorControlLabels: Record<VisitorControl, string> = {
  call: 'Call an agent',
  cancel: 'Cancel',
  mute: 'Mute',
  hangup: 'Hang up',
  retry: 'Retry',
};

/** The sentences a visitor may see; the agent's dashboard reuses the media ones. */
export const visitorCallTexts = {
  searching: 'Finding an agent…',
  queued: (position: number) => `You are number ${position} in line`,
  ringing: (agentName: string) => `Ringing ${agentName}…`,
  reassigning: 'Your agent is unavailable, connecting you to another agent…',
  connecting: (name: string) => `Connecting to ${name}…`,
  reconnecting: (attempt: number, maxAttempts: number) => `Reconnecting… (attempt ${attempt} of ${maxAttempts})`,
  agentLost: 'Connection lost, waiting for your agent…',
  mediaFailed: "We couldn't reconnect the call",
  noAgents: 'No agents are available right now',
  callEnded: 'The call has ended',
} as const;

/** A peerConnection child's snapshot, or whatever stands in for it (tests use inert doubles). */
export type CallMediaSnapshot = SnapshotFrom<PeerConnectionMachine>;

/**
 * The Reconnecting overlay while the media child restarts ICE. Outside `reconnecting` the call goes on
 * as usual: `unstable` often heals by itself within the grace period, so showing it would only flicker.
 */
export function mediaReconnectingOverlay(media: CallMediaSnapshot | undefined): string | null {
  if (!media || media.status !== 'active') return null;
  const value: unknown = media.value;
  if (typeof value !== 'object' || value === null || !('reconnecting' in value)) return null;
  const { attempts, maxAttempts } = media.context;
  // While waiting for signaling no attempt is spent yet; the visitor is told which one comes next.
  const attempt = (value as { reconnecting: unknown }).reconnecting === 'attempting' ? attempts : attempts + 1;
  return visitorCallTexts.reconnecting(Math.min(Math.max(attempt, 1), maxAttempts), maxAttempts);
}

type VisitorSnapshot = SnapshotFrom<VisitorCallMachine>;

function endedView(reason: VisitorEndReason | null): VisitorView {
  const base = { overlay: null, showVideo: false };
  switch (reason) {
    case 'media-failed':
    case 'connect-failed':
    case 'reconnect-timeout':
    case 'error':
      return { ...base, message: visitorCallTexts.mediaFailed, controls: ['retry'] };
    case 'no-agents':
    case 'reassign-limit':
      return { ...base, message: visitorCallTexts.noAgents, controls: ['retry'] };
    case 'hangup':
    case 'agent-hangup':
      return { ...base, message: visitorCallTexts.callEnded, controls: ['call'] };
    case 'cancelled':
    case null:
      return { ...base, message: null, controls: ['call'] };
  }
}

export function visitorView(snapshot: VisitorSnapshot): VisitorView {
  const { context } = snapshot;
  const waiting = (message: string): VisitorView => ({ message, overlay: null, controls: ['cancel'], showVideo: false });

  if (snapshot.matches({ waiting: 'ringing' })) {
    return waiting(context.agentName ? visitorCallTexts.ringing(context.agentName) : visitorCallTexts.searching);
  }
  if (snapshot.matches({ waiting: 'queued' })) {
    return waiting(context.queuePosition !== null ? visitorCallTexts.queued(context.queuePosition) : visitorCallTexts.searching);
  }
  if (snapshot.matches({ waiting: 'reassigning' })) return waiting(visitorCallTexts.reassigning);
  if (snapshot.matches('waiting')) return waiting(visitorCallTexts.searching);
  if (snapshot.matches('connecting')) {
    return {
      message: context.agentName ? visitorCallTexts.connecting(context.agentName) : null,
      overlay: null,
      controls: ['mute', 'hangup'],
      showVideo: true,
    };
  }
  if (snapshot.matches('inCall')) {
    return {
      message: snapshot.matches({ inCall: { peer: 'paused' } }) ? visitorCallTexts.agentLost : null,
      overlay: mediaReconnectingOverlay(snapshot.children.media?.getSnapshot()),
      controls: ['mute', 'hangup'],
      showVideo: true,
    };
  }
  if (snapshot.matches('ended')) return endedView(context.endReason);
  return { message: null, overlay: null, controls: ['call'], showVideo: false };
}
