/** What the visitor's client tells its `on` listeners, read from the visitorCall and signaling snapshots. */
import type { SnapshotFrom } from 'xstate';
import { signalingStatus, visitorView, type SignalingStatus, type VisitorCallMachine, type VisitorEndReason, type VisitorView } from '@callchart/machines';
import { topLevelState, type CallClientEventMap, type CallEventReaders, type TopLevelState } from './events.ts';

export type VisitorCallSnapshot = SnapshotFrom<VisitorCallMachine>;

export interface VisitorStatus {
  /** The signaling socket. */
  connection: SignalingStatus;
  /** The call machine's top-level state: `idle`, `waiting`, `connecting`, `inCall` or `ended`. */
  state: TopLevelState<VisitorCallSnapshot['value']>;
  /** What the widget shows: the message, the notice over the video, the indicator and the controls. */
  view: VisitorView;
}

export interface VisitorCallEnd {
  reason: VisitorEndReason;
  /** The call that ended; null when the request ended before an agent accepted it. */
  callId: string | null;
}

export type VisitorClientEvents = CallClientEventMap<VisitorCallSnapshot, VisitorStatus, VisitorCallEnd>;

export const visitorEventReaders: CallEventReaders<VisitorCallSnapshot, VisitorStatus, VisitorCallEnd> = {
  status: (call, signaling) => ({ connection: signalingStatus(signaling), state: topLevelState(call.value), view: visitorView(call) }),
  ended(previous, current) {
    const { endReason, callId } = current.context;
    return current.matches('ended') && !previous.matches('ended') && endReason !== null ? { reason: endReason, callId } : null;
  },
};
