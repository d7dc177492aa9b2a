/**
 * What the widget shows for a visitorCall snapshot (DESIGN §5). Pure, so the widget holds no state of
 * its own and every text can be tested without a browser.
 */
import type { SnapshotFrom } from 'xstate';
import { callIndicator, callNotice, callStatusTexts, type ConnectionIndicator } from './callStatus.ts';
import type { VisitorCallMachine, VisitorEndReason } from './visitorCall.machine.ts';

export type VisitorControl = 'call' | 'cancel' | 'mute' | 'hangup' | 'retry';

export interface VisitorView {
  message: string | null;
  /** Over the video while the call runs: at most one notice about its connection. */
  overlay: string | null;
  /** The widget's status dot while a call is set up or runs; null outside one (the socket's state applies). */
  connection: ConnectionIndicator | null;
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
  ...callStatusTexts,
  mediaFailed: "We couldn't reconnect the call",
  reconnectTimeout: 'The connection could not be restored in time, so the call has ended',
  noAgents: 'No agents are available right now',
  callEnded: 'The call has ended',
} as const;

type VisitorSnapshot = SnapshotFrom<VisitorCallMachine>;

function endedView(reason: VisitorEndReason | null): VisitorView {
  const base = { overlay: null, connection: null, showVideo: false };
  switch (reason) {
    case 'reconnect-timeout':
      return { ...base, message: visitorCallTexts.reconnectTimeout, controls: ['retry'] };
    case 'media-failed':
    case 'connect-failed':
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
  const waiting = (message: string): VisitorView => ({ message, overlay: null, connection: null, controls: ['cancel'], showVideo: false });

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
      connection: 'amber',
      controls: ['mute', 'hangup'],
      showVideo: true,
    };
  }
  if (snapshot.matches('inCall')) {
    const media = snapshot.children.media?.getSnapshot();
    const peer = { away: snapshot.matches({ inCall: { peer: 'away' } }), name: context.agentName ?? 'your agent' };
    return {
      message: null,
      overlay: callNotice(media, peer),
      connection: callIndicator(media, peer),
      controls: ['mute', 'hangup'],
      showVideo: true,
    };
  }
  if (snapshot.matches('ended')) return endedView(context.endReason);
  return { message: null, overlay: null, connection: null, controls: ['call'], showVideo: false };
}
