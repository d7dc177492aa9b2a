/**
 * Socket.IO binding: authenticates every connection from its handshake, validates every payload with the
 * protocol schemas, and hands valid events to the switchboard. A bad payload gets an error reply naming
 * the field and changes nothing; a socket can only address its own request and its own call.
 */
import { performance } from 'node:perf_hooks';
import type { Server, Socket } from 'socket.io';
import {
  CLIENT_EVENT_NAMES,
  parseHandshakeAuth,
  type ClientEventName,
  type ClientPayload,
  type ClientToServerEvents,
  type CallLeg as Leg,
  type ProtocolError,
  type ServerToClientEvents,
} from '@callchart/machines';
import { takesCalls } from './agents.ts';
import { z } from 'zod';
import { AuthError, type Auth, type Principal, type TokenSession } from './auth.ts';
import { handshakeAddress, proxyTrust } from './clientAddress.ts';
import type { Connections } from './connections.ts';
import type { Inspection } from './inspection.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { issuedTo, originAllowed, sameOrigin, type AllowedOrigins } from './origins.ts';
import type { ResumeSessions } from './resume.ts';
import { parseIncomingEvent } from './signalValidation.ts';
import type { SocketLimits } from './socketLimits.ts';
import { StoreUnavailableError } from './storeReads.ts';
import { callRoom, Switchboard, SwitchboardError } from './switchboard/index.ts';
import { ROOM_LOOKUP_TIMEOUT_MS } from './switchboard/rooms.ts';

/** What each socket carries from its handshake on. */
export interface SocketData {
  principal: Principal;
  /** The login or visitor session of the token the socket presented. */
  session: TokenSession;
  /** Where the socket came from: its peer, or the client a trusted proxy named (TRUST_PROXY). */
  address: string;
  /** Set when the socket's session logged out: it is in no room, and everything it sends is refused. */
  cutOff?: true;
  resumeToken?: string;
  /** The call this socket last proved itself a leg of; see `legOf`. */
  call?: CallBinding;
}
interface CallBinding {
  callId: string;
  leg: Leg;
  peerRoom: string;
  callRoom: string;
  /** In a cluster: when the peer was last found with a socket on another node (performance.now()). */
  peerSeenAt?: number;
}

/**
 * How long a peer found on another node counts as there for the next signals: a burst of candidates asks
 * every node once. A signal sent in the moment after the peer's last socket went is lost like one in flight,
 * and the pause that follows tells the sender.
 */
const PEER_SEEN_FRESH_MS = 1_000;
type RelayedSignal = 'signal.offer' | 'signal.answer' | 'signal.candidate' | 'signal.iceRestart' | 'signal.restartRequest';
type CallchartSocket = Socket<ClientToServerEvents, ServerToClientEvents, NodeEvents, SocketData>;
/** What one node tells the others through the adapter (`io.serverSideEmit`); each receives it as `io.on`. */
export interface NodeEvents {
  /** An agent's login session logged out on the sending node: its sockets here are cut off too. */
  'session.loggedOut': (agentId: string, sessionId: string) => void;
}
export type Io = Server<ClientToServerEvents, ServerToClientEvents, NodeEvents, SocketData>;

/** Every socket of one login or visitor session (one token) on this node; the adapter reaches it on any node. */
export const sessionRoom = (sessionId: string) => `session:${sessionId}`;

/** A fact from another node is checked like any input: a node of another version must not crash this one. */
const LoggedOutFact = z.tuple([z.string().min(1).max(256), z.string().min(1).max(256)]);
type Reply = (reply: unknown) => void;

export interface SocketLayerOptions {
  io: Io;
  auth: Auth;
  switchboard: Switchboard;
  resume: ResumeSessions;
  /** Each person's connection actor: every socket fact of theirs goes there. */
  connections: Connections;
  logger: Logger;
  peerAckTimeoutMs: number;
  allowedOrigins: AllowedOrigins;
  metrics?: Metrics;
  /** Where `inspect.client` entries go; null when the server does not take them (INSPECT_CLIENTS off). */
  clientInspection?: Inspection | null;
  /** The socket door's limits: events per socket, call requests per visitor, and the rejected-event log. */
  limits: SocketLimits;
  /**
   * One node of a cluster: a peer's socket may be on any node, so the relay asks the adapter (every node)
   * whether the peer's room is empty before refusing a signal, and confirms a restart with sockets anywhere;
   * a logout reaches the session's sockets on every node.
   */
  cluster?: boolean;
  /** The proxies whose X-Forwarded-For names a handshake's client (`config.trustProxy`); none by default. */
  trustProxy?: readonly string[];
  /**
   * Closes this node's inspector pages of logged-out sessions. Where the session also has sockets here, the
   * connection actor's cut-off closes them; another node's logout reaches a node that may hold its pages only.
   */
  closeInspectorSessions?: (sessionIds: ReadonlySet<string>) => void;
}

const CLIENT_EVENTS = new Set<string>(CLIENT_EVENT_NAMES);

type Person = { kind: 'agent'; id: string } | { kind: 'visitor'; id: string };

function identity(principal: Principal): Person & { key: string } {
  const person: Person = principal.kind === 'agent' ? { kind: 'agent', id: principal.agentId } : { kind: 'visitor', id: principal.visitorId };
  return { ...person, key: `${person.kind}:${person.id}` };
}

class HandlerError extends Error {
  constructor(readonly error: ProtocolError) {
    super(error.message);
  }
}

const forbidden = (message: string) => new HandlerError({ code: 'forbidden', message });

/**
 * Which leg may send each signal: the agent is the offerer (its offers include ICE restarts), the visitor
 * the answerer, who asks for a restart instead of offering one. Candidates go both ways.
 */
const SIGNAL_ROLES: Partial<Record<ClientEventName, { leg: 'agent' | 'visitor'; refusal: string }>> = {
  'signal.offer': { leg: 'agent', refusal: 'Only the offerer (the agent) sends offers.' },
  'signal.iceRestart': { leg: 'agent', refusal: 'Only the offerer (the agent) sends ICE-restart offers.' },
  'signal.answer': { leg: 'visitor', refusal: 'Only the answerer (the visitor) sends answers.' },
  'signal.restartRequest': { leg: 'visitor', refusal: 'Only the answerer (the visitor) can ask for an ICE restart.' },
};

/** The agent behind the socket, when their account takes calls; an inspector's does not. */
function callTakerOf(socket: { data: { principal: Principal } }, refusal: string): Extract<Principal, { kind: 'agent' }> {
  const principal = principalOf(socket, 'agent', refusal);
  if (!takesCalls(principal.roles)) throw forbidden(`${refusal} This account lacks the agent role, so it takes no calls.`);
  return principal;
}

/** The socket's person, when they are of the kind the event is for; `refusal` says who may send it. */
function principalOf<K extends Principal['kind']>(socket: { data: { principal: Principal } }, kind: K, refusal: string): Extract<Principal, { kind: K }> {
  const principal = socket.data.principal;
  if (principal.kind !== kind) throw forbidden(refusal);
  return principal as Extract<Principal, { kind: K }>;
}

const loggedOut = (): ProtocolError => ({ code: 'unauthorized', message: 'This login has logged out; log in again to go on.' });

/**
 * Takes every power from the sockets of a session that logged out: marked at once, so whatever they send is
 * refused, and out of every room once `sent` resolves, so nothing more reaches them. What the logout itself
 * made the machines send (the ring cancelled, the call ended) is sent after its step is committed, and still
 * reaches them. They stay open until their client closes them. Returns the sessions cut off, whose inspector
 * sockets close too.
 */
export function cutOffSockets(io: Io, socketIds: readonly string[], sent: Promise<void> = Promise.resolve()): Set<string> {
  const sessions = new Set<string>();
  const cut: CallchartSocket[] = [];
  for (const socketId of socketIds) {
    const socket = io.sockets.sockets.get(socketId);
    if (!socket) continue;
    socket.data.cutOff = true;
    sessions.add(socket.data.session.id);
    cut.push(socket);
  }
  void sent.then(() => {
    for (const socket of cut) for (const room of [...socket.rooms]) if (room !== socket.id) void socket.leave(room);
  });
  return sessions;
}

/** A refusal in the protocol's words: `unavailable` is the cluster's, never the store's `store-unavailable`. */
function refusalOf(error: SwitchboardError): ProtocolError {
  return { code: error.code, message: error.message };
}

const peerUnavailable = (leg: 'agent' | 'visitor') =>
  new HandlerError({
    code: 'peer-unavailable',
    message: `The ${leg === 'agent' ? 'visitor' : 'agent'} is not connected right now; nothing was sent.`,
  });

export function attachSocketLayer(options: SocketLayerOptions): void {
  const { io, auth, switchboard, resume, connections, logger } = options;
  const trust = proxyTrust(options.trustProxy ?? []);

  /** Refuses a handshake and says why in the log, with where it came from; never with what it carried. */
  const refuse = (
    socket: { handshake: { headers: { origin?: string | undefined } } },
    address: string,
    next: (error?: Error) => void,
    code: 'unauthorized' | 'origin-not-allowed' | 'store-unavailable',
    reason: 'no-token' | 'token-invalid' | 'origin-not-allowed' | 'revocations-unreadable',
    detail: Record<string, unknown> = {},
  ) => {
    options.metrics?.error(code);
    logger.info({ code, reason, address, origin: socket.handshake.headers.origin ?? null, ...detail }, 'socket refused');
    next(new Error(code));
  };

  io.use(async (socket, next) => {
    const address = handshakeAddress(socket.handshake, trust);
    const parsed = parseHandshakeAuth(socket.handshake.auth);
    if (!parsed.ok) return refuse(socket, address, next, 'unauthorized', 'no-token');
    try {
      const { principal, session } = await auth.verifySession(parsed.data.token);
      const { origin, host } = socket.handshake.headers;
      if (!socketOriginAllowed(principal, origin, host)) return refuse(socket, address, next, 'origin-not-allowed', 'origin-not-allowed', { kind: principal.kind });
      socket.data.principal = principal;
      socket.data.session = session;
      socket.data.address = address;
      if (parsed.data.resumeToken) socket.data.resumeToken = parsed.data.resumeToken;
      next();
    } catch (error) {
      // The token may be good: the client is told to try again, not to sign in again.
      if (error instanceof StoreUnavailableError) return refuse(socket, address, next, 'store-unavailable', 'revocations-unreadable');
      // Why, in words of our own or the library's code (an expired token, a bad signature), never a message
      // that may quote the input.
      refuse(socket, address, next, 'unauthorized', 'token-invalid', { why: error instanceof AuthError ? error.reason : null });
    }
  });

  /**
   * Agents and inspectors work from the server's own pages. A visitor's page must be an allowed one, and the
   * very page the session was issued to: a token carried to another site is refused there.
   */
  function socketOriginAllowed(principal: Principal, origin: string | undefined, host: string | undefined): boolean {
    if (principal.kind === 'agent') return sameOrigin(origin, host);
    if (!originAllowed(options.allowedOrigins, origin, host)) return false;
    return issuedTo(principal.origin, origin);
  }

  async function takeUpSession(socket: CallchartSocket, token: string): Promise<boolean> {
    const who = identity(socket.data.principal);
    // A logout that came while the resume token was checked leaves nothing to take up.
    if (!(await resume.canResume(token, who.key)) || socket.data.cutOff) {
      options.metrics?.reconnection('expired');
      socket.emit('session.expired', {});
      return false;
    }
    for (const room of await switchboard.roomsFor(who)) socket.join(room);
    const [call, request] = await Promise.all([switchboard.callFor(who), who.kind === 'visitor' ? switchboard.requestFor(who.id) : null]);
    socket.emit('session.resumed', { call, request });
    logger.info({ who: who.key, call: call?.callId ?? null }, 'session resumed');
    options.metrics?.reconnection('resumed');
    return true;
  }

  const handlers: { [E in ClientEventName]: (socket: CallchartSocket, data: ClientPayload<E>) => Promise<object | void> | object | void } = {
    'session.resume': async (socket, data) => {
      if (!(await takeUpSession(socket, data.resumeToken))) return;
      // Same fact as a resume in the handshake: without it the call would wait for a leg that is back.
      connections.resumed(identity(socket.data.principal), socket.id);
    },
    // The acknowledgement is the whole answer: the client only needs to know its socket still reaches us.
    'session.ping': () => {},
    'visitor.request': async (socket, data) => {
      const principal = principalOf(socket, 'visitor', 'Only visitors can ask for a call.');
      await options.limits.admitRequest(principal.visitorId);
      const name = data.name ?? principal.name;
      return { requestId: await switchboard.request({ visitorId: principal.visitorId, name }, data.pool) };
    },
    'visitor.cancel': async (socket, data) => {
      await switchboard.cancel(principalOf(socket, 'visitor', 'Only visitors can cancel a call request.').visitorId, data.requestId);
    },
    'agent.presence': (socket, data) => {
      const principal = callTakerOf(socket, 'Only agents have a presence.');
      connections.chose(principal.agentId, data.status);
      logger.info({ agentId: principal.agentId, status: data.status }, 'agent presence');
    },
    'agent.accept': async (socket, data) => {
      await switchboard.accept(callTakerOf(socket, 'Only agents can accept a call.').agentId, data.requestId);
    },
    'agent.reject': async (socket, data) => {
      await switchboard.reject(callTakerOf(socket, 'Only agents can reject a call.').agentId, data.requestId);
    },
    'agent.logout': async (socket) => {
      const principal = principalOf(socket, 'agent', 'Only agents can log out.');
      // Revoked first: from here on no handshake and no HTTP request takes this token, on any node, while
      // the sockets that already hold it are cut off. A revocation the store did not confirm logs nobody
      // out: the agent is told to try again.
      await auth.revoke(socket.data.session);
      endSession(principal.agentId, socket.data.session.id);
      logger.info({ agentId: principal.agentId }, 'agent logged out');
    },
    'signal.offer': (socket, data) => relayed(socket, 'signal.offer', data),
    'signal.answer': (socket, data) => relayed(socket, 'signal.answer', data),
    'signal.candidate': (socket, data) => relayed(socket, 'signal.candidate', data),
    'signal.iceRestart': (socket, data) =>
      relayed(socket, 'signal.iceRestart', data, { confirm: true }, (leg) => logger.info({ callId: data.callId, leg }, 'ICE restart offer relayed')),
    'signal.restartRequest': (socket, data) =>
      relayed(socket, 'signal.restartRequest', data, { confirm: true }, () => logger.info({ callId: data.callId }, 'ICE restart requested by the answerer')),
    'call.media': async (socket, data) => {
      const { leg } = await legOf(socket, data.callId);
      const type = data.state === 'connected' ? 'leg.mediaConnected' : data.state === 'reconnecting' ? 'leg.mediaReconnecting' : 'leg.mediaFailed';
      await switchboard.callEvent(data.callId, leg, type);
      logger.info({ callId: data.callId, leg, media: data.state, attempt: data.attempt }, 'media state');
    },
    'call.telemetry': async (socket, data) => {
      const { leg } = await legOf(socket, data.callId);
      options.metrics?.iceRestart(data.outcome);
      await switchboard.callAttempt(data.callId, leg, { at: data.at, durationMs: data.durationMs, outcome: data.outcome });
    },
    'call.hangup': async (socket, data) => {
      const { leg } = await legOf(socket, data.callId);
      await switchboard.hangup(data.callId, leg);
    },
    'inspect.client': async (socket, data) => {
      if (!options.clientInspection) throw forbidden('This server does not take client inspection (INSPECT_CLIENTS is off).');
      const who = identity(socket.data.principal);
      const target = await switchboard.requestOf({ kind: who.kind, id: who.id }, data);
      options.clientInspection.addClient(target, who.kind, data.actor, data.entries);
    },
  };

  /**
   * A revoked login session loses every socket it holds, wherever it is: on each node, the connection actor
   * of the agent decides for the sockets there (cut off, and signed out if no other login of theirs stays),
   * exactly as for the node that took the logout, and the session's inspector pages are closed. The other
   * nodes hear of it through the adapter, which carries it as it carries every emit.
   */
  function endSession(agentId: string, sessionId: string): void {
    connections.loggedOut(agentId, sessionId);
    if (options.cluster) io.serverSideEmit('session.loggedOut', agentId, sessionId);
  }

  /** Another node's logout: its inspector pages here close; only a node holding its sockets has more to cut. */
  function sessionEndedElsewhere(agentId: string, sessionId: string): void {
    options.closeInspectorSessions?.(new Set([sessionId]));
    if (!io.sockets.adapter.rooms.has(sessionRoom(sessionId))) return;
    connections.loggedOut(agentId, sessionId);
    logger.info({ agentId }, 'agent logged out on another node: its sockets here cut off');
  }

  if (options.cluster) {
    io.on('session.loggedOut', (...fact: unknown[]) => {
      const parsed = LoggedOutFact.safeParse(fact);
      if (!parsed.success) return logger.warn({ fact: 'session.loggedOut' }, 'malformed fact from another node ignored');
      sessionEndedElsewhere(...parsed.data);
    });
  }

  /**
   * The socket's leg of `callId`, checked by the switchboard once per socket and call rather than on every
   * signal. The check holds while the socket stays in the call's room: the switchboard empties that room when
   * the call ends, so an ended call is looked up (and refused) again, as is any other call. In a cluster the
   * look-up may have to ask Redis, and answers a promise.
   */
  function legOf(socket: CallchartSocket, callId: string): CallBinding | Promise<CallBinding> {
    const bound = socket.data.call;
    if (bound !== undefined && bound.callId === callId && socket.rooms.has(bound.callRoom)) return bound;
    const who = identity(socket.data.principal);
    const bind = ({ leg, peerRoom }: { leg: Leg; peerRoom: string }): CallBinding => {
      const binding: CallBinding = { callId, leg, peerRoom, callRoom: callRoom(callId) };
      socket.data.call = binding;
      return binding;
    };
    const found = switchboard.legOf(callId, who);
    return found instanceof Promise ? found.then(bind) : bind(found);
  }

  /**
   * Signals from one socket are relayed in the order it sent them. In one process each goes out as it is
   * handled; in a cluster a signal may wait on the look-ups above, so the socket's signals queue behind one
   * another (never behind its other events, which may wait for a request's owner).
   */
  const signalQueues = new WeakMap<CallchartSocket, Promise<unknown>>();
  function relayed<E extends RelayedSignal>(
    socket: CallchartSocket,
    event: E,
    data: ClientPayload<E>,
    relayOptions: { confirm?: boolean } = {},
    then?: (leg: Leg) => void,
  ): void | Promise<void> {
    if (!options.cluster) {
      const leg = relayHere(socket, event, data, legOf(socket, data.callId) as CallBinding, relayOptions);
      then?.(leg);
      return;
    }
    const turn = (signalQueues.get(socket) ?? Promise.resolve()).then(async () => {
      const leg = await relayAnywhere(socket, event, data, await legOf(socket, data.callId), relayOptions);
      then?.(leg);
    });
    signalQueues.set(socket, turn.catch(() => undefined));
    return turn;
  }

  /** Which leg may send this signal: the sender's, checked against its role. */
  function checkRole(event: RelayedSignal, leg: Leg): void {
    const role = SIGNAL_ROLES[event];
    if (role && role.leg !== leg) throw forbidden(role.refusal);
  }

  const emitTo = (target: { emit: unknown }, event: string, data: unknown) => (target.emit as (event: string, payload: unknown) => boolean)(event, data);

  /** One process: every socket of the peer is on this node. */
  function relayHere<E extends RelayedSignal>(socket: CallchartSocket, event: E, data: ClientPayload<E>, binding: CallBinding, { confirm = false } = {}): Leg {
    const { leg, peerRoom } = binding;
    checkRole(event, leg);
    // An offer into an empty room is lost, and its sender would count it as an attempt; the refusal
    // tells the sender to wait for the other person instead.
    const peers = io.sockets.adapter.rooms.get(peerRoom);
    if ((peers?.size ?? 0) === 0) throw peerUnavailable(leg);
    if (!confirm) {
      emitTo(io.to(peerRoom), event, data);
      return leg;
    }
    for (const id of peers ?? []) confirmWith(id, event, data);
    return leg;
  }

  /**
   * A cluster: the peer's sockets may be on any node. A room with a socket of the peer's on this node needs
   * no one else asked; otherwise every node is (`fetchSockets` through the adapter) before a signal is refused.
   */
  async function relayAnywhere<E extends RelayedSignal>(socket: CallchartSocket, event: E, data: ClientPayload<E>, binding: CallBinding, { confirm = false } = {}): Promise<Leg> {
    const { leg, peerRoom } = binding;
    checkRole(event, leg);
    const local = io.sockets.adapter.rooms.get(peerRoom)?.size ?? 0;
    const seenLately = binding.peerSeenAt !== undefined && performance.now() - binding.peerSeenAt < PEER_SEEN_FRESH_MS;
    if (!confirm && (local > 0 || seenLately)) {
      emitTo(io.to(peerRoom), event, data);
      return leg;
    }
    const peers = await peerSockets(peerRoom);
    if (peers?.length === 0) throw peerUnavailable(leg);
    if (peers && local < peers.length) binding.peerSeenAt = performance.now();
    if (!confirm) {
      emitTo(io.to(peerRoom), event, data);
      return leg;
    }
    if (peers) {
      for (const peer of peers) confirmWith(peer.id, event, data);
      return leg;
    }
    // Not every node said who is in the room: this node's sockets are confirmed, the others' only sent it.
    const here = [...(io.sockets.adapter.rooms.get(peerRoom) ?? [])];
    for (const id of here) confirmWith(id, event, data);
    emitTo(here.length > 0 ? io.to(peerRoom).except(here) : io.to(peerRoom), event, data);
    return leg;
  }

  /** The ids of the room's sockets on every node, or null when some node did not say in time. */
  async function peerSockets(room: string): Promise<{ id: string }[] | null> {
    try {
      return await io.in(room).timeout(ROOM_LOOKUP_TIMEOUT_MS).fetchSockets();
    } catch (error) {
      logger.warn({ err: error, room }, 'could not ask every node who is in a room; relayed without knowing');
      return null;
    }
  }

  /**
   * A restart means a path broke, and the peer's socket may have died with it while still looking
   * connected. Each of the peer's sockets must acknowledge within the timeout, or it is closed: if it was
   * the last, the leg is lost at once and the sender is told to wait, instead of offering into a void. A
   * socket's own room reaches it on whichever node it is.
   */
  function confirmWith(socketId: string, event: RelayedSignal, data: { callId: string }): void {
    const timeoutMs = options.peerAckTimeoutMs;
    const dead = () => logger.warn({ callId: data.callId, event, socket: socketId, timeoutMs }, 'peer socket did not acknowledge a restart; closed as dead');
    const peer = io.sockets.sockets.get(socketId);
    if (peer) {
      (peer.timeout(timeoutMs).emit as (event: string, payload: unknown, ack: (error: Error | null) => void) => boolean)(event, data, (error) => {
        if (!error || !peer.connected) return;
        dead();
        peer.disconnect(true);
      });
      return;
    }
    // Across nodes the answer waits for every node to count its sockets: an ack that came is enough.
    (io.to(socketId).timeout(timeoutMs).emit as (event: string, payload: unknown, ack: (error: Error | null, acks: unknown[]) => void) => boolean)(event, data, (error, acks) => {
      if (!error || acks.length > 0) return;
      dead();
      io.in(socketId).disconnectSockets(true);
    });
  }

  io.on('connection', (rawSocket) => {
    const socket: CallchartSocket = rawSocket;
    const principal = socket.data.principal;
    const who = identity(principal);
    const profile = principal.kind === 'agent' && takesCalls(principal.roles) ? { id: principal.agentId, name: principal.name, pools: principal.pools } : null;
    connections.connected(who, socket.id, profile, socket.data.session.id);
    socket.join([who.kind === 'agent' ? `agent:${who.id}` : `visitor:${who.id}`, sessionRoom(socket.data.session.id)]);

    socket.onAny((event: string, payload: unknown, ...rest: unknown[]) => {
      const ack = [payload, ...rest].findLast((arg) => typeof arg === 'function') as Reply | undefined;
      void handle(socket, event, typeof payload === 'function' ? undefined : payload, ack);
    });

    socket.on('disconnect', (reason) => {
      const last = connections.disconnected(who, socket.id);
      logger.info({ who: who.key, reason, last }, 'socket disconnected');
    });

    void (async () => {
      const resumeToken = socket.data.resumeToken;
      const resumed = resumeToken ? await takeUpSession(socket, resumeToken) : false;
      connections.ready(who, socket.id, resumed);
      socket.emit('session.ready', {
        resumeToken: await resume.issue(who.key),
        role: who.kind,
        userId: who.id,
        ...(options.clientInspection ? { inspect: true } : {}),
      });
    })().catch((error: unknown) => logger.error({ err: error }, 'connection setup failed'));
  });

  async function handle(socket: CallchartSocket, event: string, payload: unknown, ack: Reply | undefined): Promise<void> {
    const reply = (value: unknown) => {
      if (ack) ack(value);
    };
    const fail = (error: ProtocolError) => {
      // A socket that closed while its event was handled has had its summary written; nothing more of it.
      if (socket.connected) options.limits.rejections.warn(socket.id, { who: identity(socket.data.principal).key, event: CLIENT_EVENTS.has(event) ? event : '(unknown)', error });
      reply({ ok: false, error });
      options.metrics?.error(error.code);
      if (!ack) socket.emit('error', error);
    };
    // The bucket first: a socket whose session logged out is still held to it, and still struck off.
    const limited = options.limits.event(socket);
    if (limited) {
      fail(limited.refusal);
      if (limited.disconnect) socket.disconnect(true);
      return;
    }
    if (socket.data.cutOff) return fail(loggedOut());
    const parsed = parseIncomingEvent(event, payload);
    if (!parsed.ok) return fail(parsed.error);
    try {
      const handler = handlers[parsed.event] as (socket: CallchartSocket, data: unknown) => Promise<object | void> | object | void;
      const data = await handler(socket, parsed.data);
      reply({ ok: true, ...(data ?? {}) });
    } catch (error) {
      if (error instanceof HandlerError) return fail(error.error);
      if (error instanceof SwitchboardError) return fail(refusalOf(error));
      if (error instanceof StoreUnavailableError) {
        logger.warn({ err: error.cause, event }, 'client event refused: store unavailable');
        return fail({ code: 'store-unavailable', message: 'The server cannot reach its store right now; nothing was done. Please try again.' });
      }
      logger.error({ err: error, event }, 'client event failed');
      fail({ code: 'internal', message: 'Something went wrong on our side.' });
    }
  }
}
