/**
 * The agent's client: the signaling actor and the agent actor, wired to the server and to an
 * RTCPeerConnection. The dashboard sends the agent actor its user events (`login`, `accept`, `reject`,
 * `hangup`, `presence.away`, ...) and renders from the two actors' snapshots; this module only translates.
 */
import { createActor, type Actor } from 'xstate';
import {
  agentMachine,
  type AgentCallEnd,
  type AgentMachine,
  type AgentServerEndReason,
  type AgentTimings,
  type ClientPayload,
  type ServerPayload,
} from '@callchart/machines';
import { callLegEffects, createCallLeg, followCall, startCallClient, type CallLegOptions } from './callClient.ts';
import { all } from './on.ts';
import { withCallEvents, type CallClientWithEvents } from './events.ts';
import { agentEventReaders, type AgentStatus } from './agentEvents.ts';

export type AgentActor = Actor<AgentMachine>;

export interface AgentClientOptions extends CallLegOptions {
  timings?: Partial<AgentTimings>;
}

export type AgentClient = CallClientWithEvents<AgentActor, AgentStatus, AgentCallEnd>;

/** The server says `hangup` for whoever hung up; the agent's own hang-up has ended the call already. */
const agentEndReason: Record<ServerPayload<'call.ended'>['reason'], AgentServerEndReason> = {
  hangup: 'visitor-hangup',
  'media-failed': 'media-failed',
  'reconnect-timeout': 'reconnect-timeout',
  reassigned: 'reassigned',
  error: 'error',
};

export function createAgentClient(options: AgentClientOptions): AgentClient {
  const { errors, connection, media } = createCallLeg(options);

  const machine = agentMachine.provide({
    actors: { peerConnection: media.peerConnectionMachine },
    actions: {
      ...callLegEffects(connection, media),
      setPresence: (_, { presence }) => connection.send('agent.presence', { status: presence }),
      acceptRing: ({ context }) => {
        media.preload();
        if (context.requestId) connection.send('agent.accept', { requestId: context.requestId });
      },
      rejectRing: ({ context }) => {
        if (context.requestId) connection.send('agent.reject', { requestId: context.requestId });
      },
      notifyLogout: () => connection.send('agent.logout', {}),
      reportCallFailure: ({ context }) => {
        const callId = context.callId ?? context.lastCallEnd?.callId;
        if (callId) connection.send('call.media', { callId, state: 'failed' });
      },
      hangUpStrayCall: ({ event }) => {
        if (event.type === 'call.accepted') connection.send('call.hangup', { callId: event.callId });
      },
    },
  });
  const call = createActor(machine, {
    input: options.timings ? { timings: options.timings } : {},
    inspect: connection.inspect,
  });
  connection.reportInspectionFor(() => {
    const { requestId } = call.getSnapshot().context;
    return requestId === null ? null : { requestId };
  });

  const { ownsCall, handlers, unbind: unfollow } = followCall(call, connection, media, 'visitor');

  const unbind = all([
    unfollow,
    connection.onReply((event, payload, ack) => {
      // The ring moved on before the accept arrived (another agent, a cancel): the server refuses it, and
      // no `call.accepted` will ever come for it.
      if (event === 'agent.accept' && !ack.ok) call.send({ type: 'accept.refused', requestId: (payload as ClientPayload<'agent.accept'>).requestId });
    }),
    connection.onServerEvents({
      'agent.ring': ({ requestId, visitorName, expiresAt }) => call.send({ type: 'ring', requestId, visitorName, at: Date.now(), expiresAt }),
      'agent.ringCancelled': ({ requestId }) => {
        if (call.getSnapshot().context.requestId === requestId) call.send({ type: 'ring.cancelled' });
      },
      'call.accepted': (accepted) => {
        call.send({ type: 'call.accepted', callId: accepted.callId });
        if (ownsCall(accepted.callId)) media.accepted(accepted);
      },
      ...handlers,
      // The visitor lost the connection and asks for an offer now, instead of waiting for this side to notice.
      'signal.restartRequest': ({ callId }) => {
        if (ownsCall(callId)) call.send({ type: 'restart.requested', at: Date.now() });
      },
      'call.ended': ({ callId, reason }) => {
        if (ownsCall(callId)) call.send({ type: 'call.ended', reason: agentEndReason[reason] });
      },
      'session.resumed': ({ call: resumed }) => call.send({ type: 'server.resumed', call: resumed ? { callId: resumed.callId } : null }),
    }),
  ]);

  return withCallEvents(startCallClient(call, connection, media, unbind), errors, agentEventReaders);
}
