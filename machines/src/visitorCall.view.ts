/**
 * What the widget shows for a visitorCall snapshot (DESIGN §5). Pure, so the widget holds no state of
 * its own and every text can be tested without a browser. Texts are messages of the visitor's
 * catalogue (locales/), which the widget puts into the visitor's language.
 */
import type { SnapshotFrom } from 'xstate';
import { callIndicator, callNotice, type ConnectionIndicator } from './callStatus.ts';
import type { VisitorMessage, VisitorPlainKey } from './locales/index.ts';
import type { VisitorCallMachine, VisitorEndReason } from './visitorCall.machine.ts';

export type VisitorControl = 'call' | 'cancel' | 'mute' | 'hangup' | 'retry';

export interface VisitorView {
  message: VisitorMessage | null;
  /** Over the video while the call runs: at most one notice about its connection. */
  overlay: VisitorMessage | null;
  /** The widget's status dot while a call is set up or runs; null outside one (the socket's state applies). */
  connection: ConnectionIndicator | null;
  controls: VisitorControl[];
  showVideo: boolean;
}

/** Labels of the widget's buttons. */
export const visitorControlLabels: Record<VisitorControl, VisitorPlainKey> = {
  call: 'visitor.control.call',
  cancel: 'visitor.control.cancel',
  mute: 'visitor.control.mute',
  hangup: 'visitor.control.hangup',
  retry: 'visitor.control.retry',
};

type VisitorSnapshot = SnapshotFrom<VisitorCallMachine>;

function endedView(reason: VisitorEndReason | null): VisitorView {
  const base = { overlay: null, connection: null, showVideo: false };
  switch (reason) {
    case 'reconnect-timeout':
      return { ...base, message: { key: 'visitor.reconnectTimeout' }, controls: ['retry'] };
    case 'media-failed':
    case 'connect-failed':
    case 'error':
      return { ...base, message: { key: 'call.mediaFailed' }, controls: ['retry'] };
    case 'no-agents':
    case 'reassign-limit':
      return { ...base, message: { key: 'visitor.noAgents' }, controls: ['retry'] };
    case 'hangup':
    case 'agent-hangup':
      return { ...base, message: { key: 'visitor.callEnded' }, controls: ['call'] };
    case 'cancelled':
    case null:
      return { ...base, message: null, controls: ['call'] };
  }
}

export function visitorView(snapshot: VisitorSnapshot): VisitorView {
  const { context } = snapshot;
  const waiting = (message: VisitorMessage): VisitorView => ({ message, overlay: null, connection: null, controls: ['cancel'], showVideo: false });

  const searching: VisitorMessage = { key: 'visitor.searching' };

  if (snapshot.matches({ waiting: 'ringing' })) {
    return waiting(context.agentName ? { key: 'visitor.ringing', params: { name: context.agentName } } : searching);
  }
  if (snapshot.matches({ waiting: 'queued' })) {
    return waiting(context.queuePosition !== null ? { key: 'visitor.queued', params: { position: context.queuePosition } } : searching);
  }
  if (snapshot.matches({ waiting: 'reassigning' })) return waiting({ key: 'visitor.reassigning' });
  if (snapshot.matches('waiting')) return waiting(searching);
  if (snapshot.matches('connecting')) {
    return {
      message: context.agentName ? { key: 'call.connecting', params: { name: context.agentName } } : null,
      overlay: null,
      connection: 'amber',
      controls: ['mute', 'hangup'],
      showVideo: true,
    };
  }
  if (snapshot.matches('inCall')) {
    const media = snapshot.children.media?.getSnapshot();
    const peer = { away: snapshot.matches({ inCall: { peer: 'away' } }), name: context.agentName, role: 'agent' } as const;
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
