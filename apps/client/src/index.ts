export { createVisitorClient, type VisitorClient, type VisitorClientOptions, type VisitorCallActor } from './visitorClient.ts';
export { createAgentClient, type AgentClient, type AgentClientOptions, type AgentActor } from './agentClient.ts';
export type { ConnectionOptions, SignalingActor } from './connection.ts';
export type { CallStreams } from './callMedia.ts';
export type { CallClient } from './callClient.ts';
export type { RtcEnvironment } from './mediaSession.ts';
export { ClientError, type ClientErrorCode, type ClientErrorDetails, type ErrorListener } from './errors.ts';
export { bindPeerConnection, peerConnectionEffects, type PeerConnectionEffects } from './peerConnection.adapter.ts';
export { bindSignaling, randomSeed, signalingMachineFor } from './signaling.adapter.ts';
