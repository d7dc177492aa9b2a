export { createVisitorClient, type VisitorClient, type VisitorClientOptions, type VisitorCallActor } from './visitorClient.ts';
export { createAgentClient, type AgentClient, type AgentClientOptions, type AgentActor } from './agentClient.ts';
export type { ConnectionOptions, SignalingActor } from './connection.ts';
export type { CallStreams } from './callMedia.ts';
export type { CallClient } from './callClient.ts';
export type { CallClientEventMap, CallClientWithEvents, ClientEvents, TopLevelState } from './events.ts';
export type { VisitorCallEnd, VisitorCallSnapshot, VisitorClientEvents, VisitorStatus } from './visitorEvents.ts';
export type { AgentClientEvents, AgentSnapshot, AgentStatus } from './agentEvents.ts';
export type { Unsubscribe } from './on.ts';
// The types the events carry, so that a page needs no import from the machines package to name them.
export type {
  AgentCallEnd,
  AgentCallEndReason,
  AgentControl,
  AgentView,
  ConnectionIndicator,
  SignalingStatus,
  VisitorControl,
  VisitorEndReason,
  VisitorView,
} from '@callchart/machines';
export type { RtcEnvironment } from './mediaSession.ts';
export { ClientError, type ClientErrorCode, type ClientErrorDetails, type ErrorListener } from './errors.ts';
export { bindPeerConnection, peerConnectionEffects, type PeerConnectionEffects } from './peerConnection.adapter.ts';
export { bindSignaling, randomSeed, signalingMachineFor } from './signaling.adapter.ts';
export { inspectorForPage, statelyInspectorRequested, STATELY_SWITCH } from './statelyInspector.ts';
export { exposeOnPage, pageLifecycle, pageRtc, warnOnConsole, type CallchartGlobal, type PageLifecycle } from './page.ts';
export { ATTACHED_EVENT, type InspectionTarget } from './inspectionReport.ts';
export { createHttpClient, HttpRequestError, type Download, type HttpClient, type HttpClientOptions, type HttpFailure } from './http.ts';
