/**
 * The adapter between sockets and the server's machines: one routing actor per visitor request and one
 * callSession actor per live call. It turns socket facts into machine events and the machines' named
 * effects into emits and store writes. Who gets rung, when a call pauses, resumes, ends or is reassigned:
 * the machines decide all of that.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'socket.io';
import type { Actor, InspectionEvent } from 'xstate';
import {
  byArrival,
  callSessionMachine,
  eligibleAgents,
  queuePositions,
  routingMachine,
  type AgentInfo,
  type CallSessionEndReason,
  type ClientToServerEvents,
  type CallLeg as Leg,
  type LiveRequest,
  type ServerPayload,
  type ServerToClientEvents,
  type ServerEventName,
  type CallEndReason,
} from '@callchart/machines';
import { hostActor } from './actorHost.ts';
import type { ServerConfig } from './config.ts';
import { callLogger, requestLogger, type Logger } from './logger.ts';
import { Presence } from './presence.ts';
import type { Store } from './store.ts';

/** How many candidates each request holds; more than any run of rejects between two presence changes. */
const ROUTING_SHORTLIST = 16;

type Io = Server<ClientToServerEvents, ServerToClientEvents>;
type RoutingActor = Actor<typeof routingMachine>;
type CallActor = Actor<typeof callSessionMachine>;

/** The store setting the heartbeat writes; see `lastAliveAt()`. */
const ALIVE_SETTING = 'server.aliveAt';

export const agentRoom = (agentId: string) => `agent:${agentId}`;
export const visitorRoom = (visitorId: string) => `visitor:${visitorId}`;
export const callRoom = (callId: string) => `call:${callId}`;

interface RequestEntry {
  requestId: string;
  visitorId: string;
  visitorName: string;
  pool: string;
  createdAt: number;
  actor: RoutingActor;
  /** The call this request is in now, if any. */
  callId: string | null;
}

interface CallEntry {
  callId: string;
  requestId: string;
  agentId: string;
  agentName: string;
  visitorId: string;
  visitorName: string;
  actor: CallActor;
}

export type { LiveRequest };

/** The wire's reason for a callSession end reason: an agent lost for good means the visitor moves on. */
const wireEndReason: Record<CallSessionEndReason, CallEndReason> = {
  hangup: 'hangup',
  'media-failed': 'media-failed',
  'reconnect-timeout': 'reconnect-timeout',
  'agent-lost': 'reassigned',
};

export class SwitchboardError extends Error {
  constructor(
    readonly code: 'forbidden' | 'not-found' | 'conflict',
    message: string,
  ) {
    super(message);
  }
}

export interface SwitchboardOptions {
  io: Io;
  store: Store;
  config: ServerConfig;
  logger: Logger;
  now?: () => number;
  /** Receives the inspection events of every routing and callSession actor. */
  inspect?: (inspection: InspectionEvent, actor: { kind: 'routing' | 'callSession'; requestId: string; callId: string | null }) => void;
  /** Told each time a request moves on to another agent, with what made it move. */
  onReassignment?: (trigger: string) => void;
}

export class Switchboard {
  readonly presence: Presence;
  private readonly requests = new Map<string, RequestEntry>();
  /** Requests not in a call, kept from their snapshots: the only ones a presence change is sent to. */
  private readonly waiting = new Set<RequestEntry>();
  private readonly calls = new Map<string, CallEntry>();
  private readonly io: Io;
  private readonly store: Store;
  private readonly config: ServerConfig;
  private readonly logger: Logger;
  readonly now: () => number;
  private readonly inspect: SwitchboardOptions['inspect'];
  private readonly onReassignment: SwitchboardOptions['onReassignment'];

  private readonly routing = this.provideRouting();
  private readonly callSession = this.provideCallSession();
  private poolOrder: { view: readonly AgentInfo[] | null; byPool: Map<string, AgentInfo[]> } = { view: null, byPool: new Map() };

  constructor(options: SwitchboardOptions) {
    this.inspect = options.inspect;
    this.onReassignment = options.onReassignment;
    this.io = options.io;
    this.store = options.store;
    this.config = options.config;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    const setting = (agentId: string) => `presence.${agentId}`;
    this.presence = new Presence((agentId) => this.store.agents.get(agentId)?.lastAssignedAt ?? null, {
      recall: (agentId) => {
        const value = this.store.settings.get(setting(agentId));
        return value === 'away' || value === 'available' ? value : null;
      },
      remember: (agentId, status) => this.store.settings.set(setting(agentId), status ?? 'available'),
    });
    // Presence changes are coalesced and delivered after the current transition: an effect that holds an
    // agent must not drive every other routing actor from inside its own action.
    let pending = false;
    this.presence.onChange(() => {
      if (pending) return;
      pending = true;
      queueMicrotask(() => {
        pending = false;
        this.broadcastAgents();
      });
    });
  }

  private emit<E extends ServerEventName>(room: string, event: E, payload: ServerPayload<E>): void {
    (this.io.to(room).emit as (event: string, payload: unknown) => boolean)(event, payload);
  }

  // -------------------------------------------------------------------------------------------
  // Routing actors

  // Provided once and shared by every actor: an action finds its request by the id in its context. Providing
  // per actor would build a whole machine per request, which is most of the cost of starting or restoring one.
  private provideRouting() {
    const entryOf = (context: { requestId: string }) => this.requests.get(context.requestId);
    const notifyVisitor = (context: { requestId: string; visitorId: string }, payload: Omit<ServerPayload<'routing.update'>, 'requestId'>) => {
      this.emit(visitorRoom(context.visitorId), 'routing.update', { requestId: context.requestId, ...payload });
    };
    const agentName = (agentId: string | null) => (agentId ? this.store.agents.get(agentId)?.name : undefined);
    // The machine counts in logical time: a timeout's follow-up deadline runs from the deadline, not from the
    // moment the timer fired. Timers aimed at the deadline on the clock keep a late timer's lateness from
    // adding up over consecutive ring-outs, so the expiresAt an agent is told is when the ring really ends.
    const untilDeadline = ({ context }: { context: { deadlineAt: number | null; timerMs: number } }) =>
      context.deadlineAt === null ? context.timerMs : Math.max(0, context.deadlineAt - this.now());
    return routingMachine.provide({
      delays: { ringTimeout: untilDeadline, agentGrace: untilDeadline, maxQueueWait: untilDeadline },
      actions: {
        ringAgent: ({ context }) => {
          const agentId = context.currentAgentId!;
          this.presence.hold(agentId, context.requestId);
          this.emit(agentRoom(agentId), 'agent.ring', {
            requestId: context.requestId,
            visitorName: entryOf(context)?.visitorName ?? '',
            expiresAt: context.deadlineAt ?? this.now() + context.timings.ringTimeout,
          });
        },
        cancelRing: ({ context }) => {
          const agentId = context.currentAgentId;
          if (!agentId) return;
          this.presence.release(agentId, context.requestId);
          this.emit(agentRoom(agentId), 'agent.ringCancelled', { requestId: context.requestId });
        },
        // The call's own actor starts after this transition, not inside routing's action.
        connectCall: ({ context }) => {
          const agentId = context.currentAgentId!;
          queueMicrotask(() => {
            const request = entryOf(context);
            if (request) this.connectCall(request, agentId);
          });
        },
        notifyVisitorSearching: ({ context }) => notifyVisitor(context, { state: 'searching' }),
        notifyVisitorRinging: ({ context }) => {
          const name = agentName(context.currentAgentId);
          notifyVisitor(context, name ? { state: 'ringing', agentName: name } : { state: 'ringing' });
        },
        notifyVisitorReassigning: ({ context }) => {
          const request = entryOf(context);
          if (request) this.endCallForReassignment(request, context.lastTrigger?.cause ?? 'reassigned');
          notifyVisitor(context, { state: 'reassigning' });
        },
        notifyQueued: ({ context }) => {
          notifyVisitor(context, context.queuePosition ? { state: 'queued', position: context.queuePosition } : { state: 'queued' });
        },
        notifyNoAgents: ({ context }) => this.emit(visitorRoom(context.visitorId), 'routing.ended', { requestId: context.requestId, reason: 'no-agents' }),
        notifyExhausted: ({ context }) => this.emit(visitorRoom(context.visitorId), 'routing.ended', { requestId: context.requestId, reason: 'reassign-limit' }),
      },
    });
  }

  private startRequest(entry: Omit<RequestEntry, 'actor'>, snapshot?: unknown): RequestEntry {
    const full = entry as RequestEntry;
    const logger = requestLogger(this.logger, entry.requestId);
    full.actor = hostActor({
      kind: 'routing',
      actorId: `routing:${entry.requestId}`,
      requestId: entry.requestId,
      callId: null,
      machine: this.routing,
      inspect: (inspection) => this.inspect?.(inspection, { kind: 'routing', requestId: entry.requestId, callId: null }),
      input: {
        requestId: entry.requestId,
        visitorId: entry.visitorId,
        pool: entry.pool,
        agents: this.shortlist(entry.pool, []),
        maxReassignments: this.config.maxReassignments,
        timings: {
          ringTimeout: this.config.timings.ringTimeoutMs,
          agentGrace: this.config.timings.agentGraceMs,
          maxQueueWait: this.config.timings.maxQueueWaitMs,
        },
        at: entry.createdAt,
      },
      snapshot,
      store: this.store,
      logger,
      now: this.now,
      onSnapshot: (next, previous) => {
        if (previous && previous.context.reassignments < next.context.reassignments) {
          logger.info({ requestId: entry.requestId, trigger: next.context.lastTrigger, reassignments: next.context.reassignments }, 'reassignment');
        }
        // Every trigger that made the request leave its agent, whether or not another could be rung.
        if (previous && next.context.lastTrigger && next.context.lastTrigger !== previous.context.lastTrigger) {
          this.onReassignment?.(next.context.lastTrigger.cause);
        }
        this.store.requests.update(entry.requestId, { state: String(next.value) });
        if (next.status === 'active' && !next.matches('connected')) this.waiting.add(full);
        else this.waiting.delete(full);
        if (next.status === 'done') this.finishRequest(full, next.context.endReason ?? 'cancelled');
        if (previous?.value !== next.value && (next.value === 'queued' || previous?.value === 'queued')) this.updateQueuePositions();
      },
    });
    this.requests.set(entry.requestId, full);
    if (!full.actor.getSnapshot().matches('connected')) this.waiting.add(full);
    return full;
  }

  private finishRequest(entry: RequestEntry, reason: string): void {
    this.requests.delete(entry.requestId);
    this.waiting.delete(entry);
    this.store.requests.update(entry.requestId, { endedAt: this.now(), endReason: reason });
    if (reason === 'cancelled') {
      this.emit(visitorRoom(entry.visitorId), 'routing.ended', { requestId: entry.requestId, reason: 'cancelled' });
    }
    // Routing accepts a cancel mid-call. A call left running without its request would keep the agent and let
    // the visitor open a second request beside it, so its session is told that the visitor hung up.
    if (entry.callId) this.hangup(entry.callId, 'visitor');
  }

  /** Queue positions are a fact across requests, so each request is told its place in the queue's order. */
  private updateQueuePositions(): void {
    const queued = [...this.requests.values()].filter((entry) => entry.actor.getSnapshot().matches('queued'));
    for (const [entry, position] of queuePositions(queued)) {
      if (entry.actor.getSnapshot().context.queuePosition !== position) {
        entry.actor.send({ type: 'queue.position', position, at: this.now() });
      }
    }
  }

  private broadcastAgents(): void {
    const at = this.now();
    // A view per request, taken when it is sent: a request earlier in the loop may ring (hold) an agent, and
    // a view taken before the loop would offer that same agent to every queued request after it.
    // A request in a call rings nobody, and every presence change would otherwise rewrite each call's
    // snapshot: calls × changes writes. It gets a fresh list just before anything can move it on.
    // Oldest first, as the requests were made: a request back from a call must not lose its turn to newer ones.
    for (const entry of byArrival(this.waiting)) this.refreshAgents(entry, at);
  }

  private refreshAgents(entry: RequestEntry, at = this.now()): void {
    const { pool, triedAgentIds } = entry.actor.getSnapshot().context;
    entry.actor.send({ type: 'agents.updated', agents: this.shortlist(pool, triedAgentIds), at });
  }

  /**
   * The agents a request could ring next, best first, and only the first few: routing only ever rings the
   * first eligible agent, and every ring, reject or status change sends a fresh list before the few run out.
   * A request's context (persisted at every transition) then stays small however many agents are online.
   */
  private shortlist(pool: string, triedAgentIds: readonly string[]) {
    const view = this.presence.view();
    // One ordering per pool for each presence view, shared by every request that refreshes against it: a
    // change refreshes every waiting request, and sorting the whole pool for each was quadratic in agents.
    if (this.poolOrder.view !== view) this.poolOrder = { view, byPool: new Map() };
    let ordered = this.poolOrder.byPool.get(pool);
    if (!ordered) {
      ordered = eligibleAgents(view, pool, []);
      this.poolOrder.byPool.set(pool, ordered);
    }
    const list = [];
    for (const agent of ordered) {
      if (triedAgentIds.includes(agent.id)) continue;
      list.push(agent);
      if (list.length === ROUTING_SHORTLIST) break;
    }
    return list;
  }

  request(visitor: { visitorId: string; name: string }, pool: string): string {
    const existing = [...this.requests.values()].find((entry) => entry.visitorId === visitor.visitorId);
    if (existing) throw new SwitchboardError('conflict', 'You already have a call request in progress.');
    const requestId = `req_${randomUUID()}`;
    const createdAt = this.now();
    this.store.requests.create({ id: requestId, visitorId: visitor.visitorId, visitorName: visitor.name, pool, state: 'searching', createdAt });
    const entry = this.startRequest({ requestId, visitorId: visitor.visitorId, visitorName: visitor.name, pool, createdAt, callId: null });
    entry.actor.start();
    return requestId;
  }

  private ownRequest(visitorId: string, requestId: string): RequestEntry {
    const entry = this.requests.get(requestId);
    if (!entry) throw new SwitchboardError('not-found', 'There is no such call request.');
    if (entry.visitorId !== visitorId) throw new SwitchboardError('forbidden', 'This call request belongs to someone else.');
    return entry;
  }

  cancel(visitorId: string, requestId: string): void {
    this.ownRequest(visitorId, requestId).actor.send({ type: 'visitor.cancelled', at: this.now() });
  }

  /** An agent may only answer a ring that is ringing for them right now. */
  private ringFor(agentId: string, requestId: string): RequestEntry {
    const entry = this.requests.get(requestId);
    const snapshot = entry?.actor.getSnapshot();
    if (!entry || !snapshot || snapshot.value !== 'ringing' || snapshot.context.currentAgentId !== agentId) {
      throw new SwitchboardError('forbidden', 'This call is not ringing for you.');
    }
    return entry;
  }

  accept(agentId: string, requestId: string): void {
    this.ringFor(agentId, requestId).actor.send({ type: 'agent.accepted', agentId, at: this.now() });
  }

  reject(agentId: string, requestId: string): void {
    this.ringFor(agentId, requestId).actor.send({ type: 'agent.rejected', agentId, at: this.now() });
  }

  /** Away, logout and a dropped last socket reach every request that holds the agent. */
  agentLost(agentId: string, cause: 'socket' | 'away' | 'logout'): void {
    const at = this.now();
    for (const entry of [...this.requests.values()]) {
      if (entry.actor.getSnapshot().context.currentAgentId !== agentId) continue;
      this.refreshAgents(entry);
      entry.actor.send({ type: 'agent.lost', agentId, cause, at });
    }
    if (cause === 'socket') this.legEvent('agent', agentId, 'leg.socketLost');
  }

  agentReturned(agentId: string): void {
    const at = this.now();
    for (const entry of [...this.requests.values()]) {
      const snapshot = entry.actor.getSnapshot();
      if (snapshot.context.currentAgentId === agentId && snapshot.value === 'agentLost') {
        entry.actor.send({ type: 'agent.returned', agentId, at });
      }
    }
    this.legEvent('agent', agentId, 'leg.socketBack');
  }

  /** A ring sent while the agent had no socket (or before a restart) reaches whichever socket it opens next. */
  resendRings(agentId: string): void {
    const at = this.now();
    for (const entry of this.requests.values()) {
      const snapshot = entry.actor.getSnapshot();
      if (snapshot.context.currentAgentId !== agentId || snapshot.value !== 'ringing') continue;
      this.emit(agentRoom(agentId), 'agent.ring', {
        requestId: entry.requestId,
        visitorName: entry.visitorName,
        expiresAt: snapshot.context.deadlineAt ?? at,
      });
    }
  }

  /** Where a visitor's request stands, for a visitor resuming before its call exists. */
  requestFor(visitorId: string): ServerPayload<'session.resumed'>['request'] {
    for (const entry of this.requests.values()) {
      if (entry.visitorId !== visitorId) continue;
      const { value, context } = entry.actor.getSnapshot();
      if (value === 'ringing') {
        const name = context.currentAgentId ? this.store.agents.get(context.currentAgentId)?.name : undefined;
        return name ? { requestId: entry.requestId, state: 'ringing', agentName: name } : { requestId: entry.requestId, state: 'ringing' };
      }
      // Nobody was rung while this visitor was away; their return starts the search again.
      if (value === 'waitingForVisitor') return { requestId: entry.requestId, state: 'searching' };
      if (value === 'queued') {
        return context.queuePosition
          ? { requestId: entry.requestId, state: 'queued', position: context.queuePosition }
          : { requestId: entry.requestId, state: 'queued' };
      }
    }
    return null;
  }

  /** Visitors whose restored requests wait for them: each gets the resume window to come back. */
  waitingVisitors(): string[] {
    return [...new Set([...this.requests.values()].filter((entry) => !entry.callId).map((entry) => entry.visitorId))];
  }

  visitorLost(visitorId: string): void {
    this.visitorEvent(visitorId, 'visitor.away');
    this.legEvent('visitor', visitorId, 'leg.socketLost');
  }

  visitorReturned(visitorId: string): void {
    this.visitorEvent(visitorId, 'visitor.back');
    this.legEvent('visitor', visitorId, 'leg.socketBack');
  }

  private visitorEvent(visitorId: string, type: 'visitor.away' | 'visitor.back'): void {
    const at = this.now();
    for (const entry of [...this.requests.values()]) {
      if (entry.visitorId !== visitorId) continue;
      this.refreshAgents(entry);
      entry.actor.send({ type, at });
    }
  }

  /** A visitor who did not come back within the resume window gives up a request not yet in a call. */
  visitorGone(visitorId: string): void {
    for (const entry of [...this.requests.values()]) {
      if (entry.visitorId === visitorId && !entry.callId) entry.actor.send({ type: 'visitor.cancelled', at: this.now() });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Calls

  private provideCallSession() {
    return callSessionMachine.provide({
      actions: {
        notifyPaused: ({ context }) => this.emit(callRoom(context.callId), 'call.paused', { callId: context.callId, legs: context.legs }),
        notifyResumed: ({ context }) => this.emit(callRoom(context.callId), 'call.resumed', { callId: context.callId }),
        requestReassignment: ({ context }) => {
          const at = this.now();
          const requestId = this.calls.get(context.callId)?.requestId;
          // After this transition, not inside it: the routing actor's own effects end this very call.
          queueMicrotask(() => {
            const request = requestId ? this.requests.get(requestId) : undefined;
            if (!request) return;
            this.refreshAgents(request);
            request.actor.send({ type: 'session.agentTimedOut', at });
          });
        },
      },
    });
  }

  private startCall(entry: Omit<CallEntry, 'actor'>, snapshot?: unknown): CallEntry {
    const full = entry as CallEntry;
    const logger = callLogger(this.logger, entry.callId, { requestId: entry.requestId });
    full.actor = hostActor({
      kind: 'callSession',
      actorId: `callSession:${entry.callId}`,
      requestId: entry.requestId,
      callId: entry.callId,
      machine: this.callSession,
      inspect: (inspection) => this.inspect?.(inspection, { kind: 'callSession', requestId: entry.requestId, callId: entry.callId }),
      input: { callId: entry.callId, timings: { reconnectionTimeout: this.config.timings.reconnectionTimeoutMs }, at: this.now() },
      snapshot,
      store: this.store,
      logger,
      now: this.now,
      onSnapshot: (next, previous) => {
        const before = previous?.context;
        for (const d of next.context.disconnections.slice(before?.disconnections.length ?? 0)) {
          this.store.telemetry.append({ callId: entry.callId, kind: 'disconnection', leg: d.leg, at: d.at, cause: d.cause });
          logger.info({ callId: entry.callId, leg: d.leg, cause: d.cause }, 'leg lost');
        }
        for (const a of next.context.reconnectionAttempts.slice(before?.reconnectionAttempts.length ?? 0)) {
          this.store.telemetry.append({ callId: entry.callId, kind: 'reconnection-attempt', leg: a.leg, at: a.at, durationMs: a.durationMs, outcome: a.outcome });
          logger.info({ callId: entry.callId, leg: a.leg, durationMs: a.durationMs, outcome: a.outcome }, 'reconnection attempt');
        }
        const paused = next.hasTag('paused');
        this.store.calls.update(entry.callId, { state: next.status === 'done' ? 'ended' : paused ? 'paused' : 'active', totalPauseMs: next.context.totalPauseMs });
        if (next.status === 'done') this.finishCall(full, next.context.endReason ?? 'hangup');
      },
    });
    this.calls.set(entry.callId, full);
    return full;
  }

  private connectCall(request: RequestEntry, agentId: string): void {
    const agent = this.store.agents.get(agentId);
    if (!agent) return;
    const callId = `call_${randomUUID()}`;
    const at = this.now();
    this.store.calls.create({
      id: callId,
      requestId: request.requestId,
      visitorId: request.visitorId,
      visitorName: request.visitorName,
      agentId,
      pool: request.pool,
      state: 'active',
      startedAt: at,
    });
    this.store.agents.markAssigned(agentId, at);
    this.presence.assigned(agentId, at);
    request.callId = callId;
    const entry = this.startCall({
      callId,
      requestId: request.requestId,
      agentId,
      agentName: agent.name,
      visitorId: request.visitorId,
      visitorName: request.visitorName,
    });
    this.io.in(agentRoom(agentId)).socketsJoin(callRoom(callId));
    this.io.in(visitorRoom(request.visitorId)).socketsJoin(callRoom(callId));
    entry.actor.start();
    const ice = { iceServers: this.config.ice.servers, iceTransportPolicy: this.config.ice.transportPolicy };
    this.emit(agentRoom(agentId), 'call.accepted', { callId, role: 'offerer', peerName: request.visitorName, ...ice });
    this.emit(visitorRoom(request.visitorId), 'call.accepted', { callId, role: 'answerer', peerName: agent.name, ...ice });
    callLogger(this.logger, callId).info({ requestId: request.requestId, agentId, visitorId: request.visitorId }, 'call connected');
  }

  private finishCall(entry: CallEntry, reason: CallSessionEndReason): void {
    this.calls.delete(entry.callId);
    const at = this.now();
    this.store.calls.update(entry.callId, { state: 'ended', endedAt: at, endReason: reason === 'agent-lost' ? 'reassigned' : reason });
    // An agent lost for good ends the call for the agent only: the visitor's request goes on, and the visitor
    // hears `routing.update` reassigning instead (a call.ended would end its whole session).
    const endedFor = reason === 'agent-lost' ? agentRoom(entry.agentId) : callRoom(entry.callId);
    this.emit(endedFor, 'call.ended', { callId: entry.callId, reason: wireEndReason[reason] });
    this.io.in(callRoom(entry.callId)).socketsLeave(callRoom(entry.callId));
    this.presence.release(entry.agentId, entry.requestId);
    const request = this.requests.get(entry.requestId);
    if (request?.callId === entry.callId) {
      request.callId = null;
      // agent-lost hands the request back to routing, which reassigns; any other end finishes it.
      if (reason !== 'agent-lost') request.actor.send({ type: 'call.ended', at });
    }
    callLogger(this.logger, entry.callId).info({ reason }, 'call ended');
  }

  /** Routing moved the visitor on: the old agent's call is over for that agent. */
  private endCallForReassignment(request: RequestEntry, cause: string): void {
    const callId = request.callId;
    const entry = callId ? this.calls.get(callId) : undefined;
    if (!entry) return;
    request.callId = null;
    entry.actor.stop();
    this.calls.delete(entry.callId);
    this.store.snapshots.delete(`callSession:${entry.callId}`);
    this.store.calls.update(entry.callId, { state: 'ended', endedAt: this.now(), endReason: 'reassigned' });
    this.store.events.append({ callId: entry.callId, requestId: request.requestId, actor: 'server', type: 'reassigned', cause, at: this.now() });
    this.emit(agentRoom(entry.agentId), 'call.ended', { callId: entry.callId, reason: 'reassigned' });
    this.io.in(callRoom(entry.callId)).socketsLeave(callRoom(entry.callId));
    this.presence.release(entry.agentId, request.requestId);
    callLogger(this.logger, entry.callId).info({ cause }, 'call reassigned');
  }

  /** The live call a principal is a leg of, checked so a socket can only address its own call. */
  legOf(callId: string, principal: { kind: 'agent'; id: string } | { kind: 'visitor'; id: string }): { entry: CallEntry; leg: Leg; peerRoom: string } {
    const entry = this.calls.get(callId);
    if (!entry) throw new SwitchboardError('not-found', 'There is no such live call.');
    if (principal.kind === 'agent' && entry.agentId === principal.id) return { entry, leg: 'agent', peerRoom: visitorRoom(entry.visitorId) };
    if (principal.kind === 'visitor' && entry.visitorId === principal.id) return { entry, leg: 'visitor', peerRoom: agentRoom(entry.agentId) };
    throw new SwitchboardError('forbidden', 'You are not part of this call.');
  }

  callEvent(callId: string, leg: Leg, event: 'leg.mediaConnected' | 'leg.mediaReconnecting' | 'leg.mediaFailed'): void {
    const entry = this.calls.get(callId);
    if (!entry) return;
    const at = this.now();
    // A peer connection is up for both ends at once, so the first report of it dates the call's start.
    if (event === 'leg.mediaConnected' && this.store.calls.get(callId)?.connectedAt === null) this.store.calls.update(callId, { connectedAt: at });
    entry.actor.send({ type: event, leg, at });
  }

  callAttempt(callId: string, leg: Leg, attempt: { at: number; durationMs: number; outcome: 'recovered' | 'failed' }): void {
    this.calls.get(callId)?.actor.send({ type: 'leg.attempt', leg, ...attempt });
  }

  hangup(callId: string, leg: Leg): void {
    this.calls.get(callId)?.actor.send({ type: 'call.hangup', by: leg, at: this.now() });
  }

  private legEvent(leg: Leg, id: string, type: 'leg.socketLost' | 'leg.socketBack'): void {
    const at = this.now();
    for (const entry of this.calls.values()) {
      if ((leg === 'agent' ? entry.agentId : entry.visitorId) === id) entry.actor.send({ type, leg, at });
    }
  }

  /** What a resuming client is told about its call. */
  callFor(principal: { kind: 'agent' | 'visitor'; id: string }): ServerPayload<'session.resumed'>['call'] {
    for (const entry of this.calls.values()) {
      const mine = principal.kind === 'agent' ? entry.agentId === principal.id : entry.visitorId === principal.id;
      if (!mine) continue;
      const snapshot = entry.actor.getSnapshot();
      const paused = snapshot.hasTag('paused');
      return {
        callId: entry.callId,
        role: principal.kind === 'agent' ? 'offerer' : 'answerer',
        peerName: principal.kind === 'agent' ? entry.visitorName : entry.agentName,
        state: paused ? 'paused' : 'active',
      };
    }
    return null;
  }

  /** Rooms a (re)connecting socket belongs in. */
  roomsFor(principal: { kind: 'agent' | 'visitor'; id: string }): string[] {
    const rooms = [principal.kind === 'agent' ? agentRoom(principal.id) : visitorRoom(principal.id)];
    for (const entry of this.calls.values()) {
      if ((principal.kind === 'agent' ? entry.agentId : entry.visitorId) === principal.id) rooms.push(callRoom(entry.callId));
    }
    return rooms;
  }

  // -------------------------------------------------------------------------------------------
  // Restart recovery

  /**
   * Restores every persisted actor. Nobody's socket survived the restart, so every leg starts lost (the
   * call pauses until both peers resume), and every timer is re-armed with the time it had left.
   */
  /**
   * Brings back every persisted actor, started but with its timers not yet running: call `armRestored()` once
   * the server listens, so that the time the restore itself takes is not taken from anyone's deadlines. One
   * transaction: each actor's start rewrites its snapshot, and one commit per write is most of a restart's time.
   */
  restore(): { requests: number; calls: number } {
    return this.store.transaction(() => this.restoreActors());
  }

  /**
   * Re-arms the restored actors' timers (XState does not restore them) and marks both legs of every call lost:
   * their sockets went with the old process. From here the reconnection windows run.
   */
  armRestored(lostAt: number | null = null): void {
    const at = this.now();
    // The sockets went when the old process stopped answering, not when this one came up: every grace
    // and timeout runs from then, and the pause telemetry counts the time the server was down.
    const lost = lostAt === null ? at : Math.min(lostAt, at);
    this.store.transaction(() => {
      for (const entry of [...this.requests.values()]) {
        const agentId = entry.actor.getSnapshot().context.currentAgentId;
        if (agentId && entry.callId) entry.actor.send({ type: 'agent.lost', agentId, cause: 'socket', at: lost });
        entry.actor.send({ type: 'timers.rearm', at });
      }
      for (const entry of [...this.calls.values()]) {
        entry.actor.send({ type: 'leg.socketLost', leg: 'agent', at: lost });
        entry.actor.send({ type: 'leg.socketLost', leg: 'visitor', at: lost });
        entry.actor.send({ type: 'timers.rearm', at });
      }
    });
  }

  /** When the process last knew itself alive; the next one dates every socket it lost from this. */
  lastAliveAt(): number | null {
    const value = Number(this.store.settings.get(ALIVE_SETTING));
    return Number.isFinite(value) && value > 0 ? value : null;
  }

  markAlive(): void {
    this.store.settings.set(ALIVE_SETTING, String(this.now()));
  }

  private restoreActors(): { requests: number; calls: number } {
    let requests = 0;
    let calls = 0;
    for (const record of this.store.snapshots.all()) {
      try {
        if (record.kind === 'routing') {
          const row = this.store.requests.get(record.requestId);
          if (!row) continue;
          const entry = this.startRequest(
            { requestId: row.id, visitorId: row.visitorId, visitorName: row.visitorName, pool: row.pool, createdAt: row.createdAt, callId: null },
            record.snapshot,
          );
          const agentId = entry.actor.getSnapshot().context.currentAgentId;
          if (agentId) this.presence.hold(agentId, row.id);
          requests++;
        } else if (record.callId) {
          const row = this.store.calls.get(record.callId);
          if (!row) continue;
          this.startCall(
            { callId: row.id, requestId: row.requestId, agentId: row.agentId, agentName: row.agentName, visitorId: row.visitorId, visitorName: row.visitorName },
            record.snapshot,
          );
          this.presence.hold(row.agentId, row.requestId);
          calls++;
        }
      } catch (error) {
        this.logger.error({ err: error, actorId: record.actorId }, 'could not restore an actor; discarding its snapshot');
        this.store.snapshots.delete(record.actorId);
      }
    }
    for (const entry of this.calls.values()) {
      const request = this.requests.get(entry.requestId);
      if (request) request.callId = entry.callId;
    }
    for (const entry of [...this.requests.values()]) entry.actor.start();
    for (const entry of [...this.calls.values()]) entry.actor.start();
    return { requests, calls };
  }

  /** Stops every actor without ending anything: their snapshots stay in the store for the next start. */
  stop(): void {
    for (const entry of this.requests.values()) entry.actor.stop();
    for (const entry of this.calls.values()) entry.actor.stop();
    this.requests.clear();
    this.waiting.clear();
    this.calls.clear();
  }

  routingSnapshot(requestId: string) {
    return this.requests.get(requestId)?.actor.getSnapshot();
  }

  callSnapshot(callId: string) {
    return this.calls.get(callId)?.actor.getSnapshot();
  }

  /** Live requests and their calls, for the inspector's list. */
  live(): LiveRequest[] {
    return [...this.requests.values()].map((entry) => {
      const snapshot = entry.actor.getSnapshot();
      const agentId = snapshot.context.currentAgentId;
      const call = entry.callId ? this.calls.get(entry.callId) : undefined;
      return {
        requestId: entry.requestId,
        pool: entry.pool,
        visitorName: entry.visitorName,
        agentName: call?.agentName ?? (agentId ? (this.store.agents.get(agentId)?.name ?? null) : null),
        createdAt: entry.createdAt,
        state: snapshot.value,
        call: call ? { callId: call.callId, agentName: call.agentName, state: call.actor.getSnapshot().value } : null,
      };
    });
  }

  /**
   * The request a principal may speak about: a visitor's own, or the one ringing or connected to an agent.
   * With a callId, the call must be theirs (as for every call event).
   */
  requestOf(principal: { kind: 'agent' | 'visitor'; id: string }, ref: { requestId?: string | undefined; callId?: string | undefined }): { requestId: string; callId: string | null } {
    if (ref.callId !== undefined) {
      const { entry } = this.legOf(ref.callId, principal as { kind: 'agent'; id: string });
      if (ref.requestId !== undefined && ref.requestId !== entry.requestId) throw new SwitchboardError('forbidden', 'This call belongs to another request.');
      return { requestId: entry.requestId, callId: entry.callId };
    }
    const requestId = ref.requestId ?? '';
    if (principal.kind === 'visitor') return { requestId: this.ownRequest(principal.id, requestId).requestId, callId: null };
    const entry = this.requests.get(requestId);
    if (!entry || entry.actor.getSnapshot().context.currentAgentId !== principal.id) {
      throw new SwitchboardError('forbidden', 'This call request is not yours.');
    }
    return { requestId, callId: null };
  }

  /** Requests waiting in the queue for a free agent. */
  queuedCount(): number {
    let queued = 0;
    for (const entry of this.requests.values()) if (entry.actor.getSnapshot().matches('queued')) queued++;
    return queued;
  }

  stats(): { requests: number; calls: number } {
    return { requests: this.requests.size, calls: this.calls.size };
  }
}
