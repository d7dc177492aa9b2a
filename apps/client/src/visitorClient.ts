/**
 * The visitor's client: the signaling actor and the visitorCall actor, wired to the server and to an
 * RTCPeerConnection. The widget sends the call actor its user events (`call.request`, `hangup`,
 * `mute.toggle`, ...) and renders from the two actors' snapshots; this module only translates.
 */
import { createActor, type Actor } from 'xstate';
import {
  routePath,
  visitorCallMachine,
  visitorCancelRoute,
  type ServerPayload,
  type VisitorCallMachine,
  type VisitorCallTimings,
  type VisitorServerEndReason,
} from '@callchart/machines';
import { callLegEffects, createCallLeg, followCall, startCallClient, type CallLegOptions } from './callClient.ts';
import { all } from './on.ts';
import { pageLifecycle, type PageLifecycle } from './page.ts';
import { withCallEvents, type CallClientWithEvents } from './events.ts';
import { visitorEventReaders, type VisitorCallEnd, type VisitorStatus } from './visitorEvents.ts';

export type VisitorCallActor = Actor<VisitorCallMachine>;

export interface VisitorClientOptions extends CallLegOptions {
  /** The agent pool a `call.request` without one goes to. */
  pool: string;
  timings?: Partial<VisitorCallTimings>;
  /**
   * The page's going away: a request still waiting for an agent is cancelled with a beacon when the page
   * closes, rather than held by the server for a visitor who cannot come back. Defaults to the browser's
   * (`pageLifecycle()`); `null` leaves it to the server's resume window.
   */
  page?: PageLifecycle | null;
}

export type VisitorClient = CallClientWithEvents<VisitorCallActor, VisitorStatus, VisitorCallEnd>;

/** The server says `hangup` for whoever hung up; the visitor's own hang-up has ended the call already. */
const visitorEndReason: Record<Exclude<ServerPayload<'call.ended'>['reason'], 'reassigned'>, VisitorServerEndReason> = {
  hangup: 'agent-hangup',
  'media-failed': 'media-failed',
  'reconnect-timeout': 'reconnect-timeout',
  error: 'error',
};

export function createVisitorClient(options: VisitorClientOptions): VisitorClient {
  const { errors, connection, media } = createCallLeg(options);
  const page = options.page === undefined ? pageLifecycle() : options.page;
  // The server names the request in the request's acknowledgement and in every routing message.
  let requestId: string | null = null;
  let cancelWhenKnown = false;

  const learnRequest = (id: string) => {
    if (requestId !== null) return;
    requestId = id;
    if (cancelWhenKnown) {
      cancelWhenKnown = false;
      connection.send('visitor.cancel', { requestId: id });
    }
  };

  const machine = visitorCallMachine.provide({
    actors: { peerConnection: media.peerConnectionMachine },
    actions: {
      ...callLegEffects(connection, media),
      requestCall: ({ context }) => {
        media.preload();
        requestId = null;
        cancelWhenKnown = false;
        connection.send('visitor.request', { pool: context.pool ?? options.pool });
      },
      cancelRequest: () => {
        if (requestId) connection.send('visitor.cancel', { requestId });
        else cancelWhenKnown = true;
      },
      // A request the server has not named yet cannot be cancelled from a closed page; it is held for the
      // resume window as any lost socket's is.
      sendCancelBeacon: () => {
        if (page && requestId) page.beacon(`${options.url}${routePath(visitorCancelRoute)}`, JSON.stringify({ token: options.token, requestId }));
      },
      reportCallFailure: ({ context }) => {
        if (context.callId) connection.send('call.media', { callId: context.callId, state: 'failed' });
      },
      setMuted: ({ context }) => media.setMuted(context.muted),
    },
  });
  const call = createActor(machine, {
    input: { pool: options.pool, ...(options.timings ? { timings: options.timings } : {}) },
    inspect: connection.inspect,
  });
  connection.reportInspectionFor(() => (requestId === null ? null : { requestId }));

  const ownsRequest = (id: string) => requestId === null || requestId === id;
  const { ownsCall, handlers, unbind: unfollow } = followCall(call, connection, media, 'agent');

  const unbind = all([
    unfollow,
    page ? page.onClose(() => call.send({ type: 'page.closed' })) : () => {},
    connection.onReply((event, _payload, ack) => {
      if (event === 'visitor.request' && ack.ok && 'requestId' in ack && typeof ack.requestId === 'string') learnRequest(ack.requestId);
    }),
    connection.onServerEvents({
      'routing.update': (update) => {
        if (!ownsRequest(update.requestId)) return;
        learnRequest(update.requestId);
        switch (update.state) {
          case 'searching':
            return call.send({ type: 'routing.searching' });
          case 'ringing':
            return call.send({ type: 'routing.ringing', agentName: update.agentName ?? '' });
          case 'reassigning':
            return call.send({ type: 'routing.reassigning' });
          case 'queued':
            // The switchboard numbers the queue right after a request joins it; the update without a
            // position is followed at once by one with it.
            if (update.position !== undefined) call.send({ type: 'routing.queued', position: update.position });
            return;
        }
      },
      'routing.ended': ({ requestId: id, reason }) => {
        if (ownsRequest(id)) call.send({ type: 'routing.ended', reason });
      },
      'call.accepted': (accepted) => {
        call.send({ type: 'call.accepted', callId: accepted.callId, agentName: accepted.peerName });
        media.accepted(accepted);
      },
      ...handlers,
      'call.ended': ({ callId, reason }) => {
        // `reassigned` ends the agent's call, not the visitor's: routing's `reassigning` moves the visitor on.
        if (!ownsCall(callId) || reason === 'reassigned') return;
        call.send({ type: 'call.ended', reason: visitorEndReason[reason] });
      },
      'session.resumed': ({ call: resumed, request }) => {
        // Only this client's request is its to follow; the call machine judges the call by its own id.
        const owned = request && ownsRequest(request.requestId) ? request : null;
        if (owned) learnRequest(owned.requestId);
        const where = owned ? { state: owned.state, agentName: owned.agentName, position: owned.position } : null;
        call.send({ type: 'server.resumed', call: resumed ? { callId: resumed.callId } : null, request: where });
      },
    }),
  ]);

  return withCallEvents(startCallClient(call, connection, media, unbind), errors, visitorEventReaders);
}
