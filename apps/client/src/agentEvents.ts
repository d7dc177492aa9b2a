/** What the agent's client tells its `on` listeners, read from the agent and signaling snapshots. */
import type { SnapshotFrom } from 'xstate';
import { agentView, signalingStatus, type AgentCallEnd, type AgentMachine, type AgentView, type SignalingStatus } from '@callchart/machines';
import { topLevelState, type CallClientEventMap, type CallEventReaders, type TopLevelState } from './events.ts';

export type AgentSnapshot = SnapshotFrom<AgentMachine>;

export interface AgentStatus {
  /** The signaling socket. */
  connection: SignalingStatus;
  /** The agent machine's top-level state: `offline`, `available`, `away`, `ringing`, `connecting`, `inCall` or `callFailed`. */
  state: TopLevelState<AgentSnapshot['value']>;
  /** What the dashboard shows: presence, the ring, the message, the notice over the video, the controls. */
  view: AgentView;
}

export type AgentClientEvents = CallClientEventMap<AgentSnapshot, AgentStatus, AgentCallEnd>;

export const agentEventReaders: CallEventReaders<AgentSnapshot, AgentStatus, AgentCallEnd> = {
  status: (call, signaling) => ({ connection: signalingStatus(signaling), state: topLevelState(call.value), view: agentView(call) }),
  // The machine records every end of a call, whoever ended it, as a new `lastCallEnd`.
  ended: (previous, current) => (current.context.lastCallEnd !== previous.context.lastCallEnd ? current.context.lastCallEnd : null),
};
