/**
 * The adapter between sockets and the server's machines: one actor tree per visitor request (routing, which
 * invokes a callSession for the call). It turns socket facts into machine events; the machines' named
 * effects (effects.ts) turn into store writes and emits, and each step's emits go out once its writes are
 * committed (journal.ts). Who gets rung, when a call pauses, resumes, ends or is reassigned: the machines
 * decide all of that.
 */
import { randomUUID } from 'node:crypto';
import type { InspectionEvent } from 'xstate';
import type { CallLeg as Leg, LiveRequest, RoutingEvent, ServerPayload } from '@callchart/machines';
import type { TreeMember } from '../actorHost.ts';
import type { ServerConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Presence } from '../presence.ts';
import type { Store } from '../store.ts';
import { storeRead } from '../storeReads.ts';
import * as access from './access.ts';
import { SwitchboardError, type CallEntry, type RequestEntry } from './entries.ts';
import { Registry } from './registry.ts';
import { agentRoom, Rooms, type Person, type SwitchboardIo } from './rooms.ts';
import * as views from './views.ts';

export { SwitchboardError } from './entries.ts';
export { agentRoom, callRoom, visitorRoom } from './rooms.ts';
export type { LiveRequest };

/** The store setting the heartbeat writes; see `lastAliveAt()`. */
const ALIVE_SETTING = 'server.aliveAt';

export interface SwitchboardOptions {
  io: SwitchboardIo;
  store: Store;
  config: ServerConfig;
  logger: Logger;
  now?: () => number;
  /** Receives the inspection events of every routing and callSession actor. */
  inspect?: (inspection: InspectionEvent, actor: TreeMember) => void;
  /** Told each time a request moves on to another agent, with what made it move. */
  onReassignment?: (trigger: string) => void;
}

export class Switchboard {
  readonly now: () => number;
  private readonly store: Store;
  private readonly registry: Registry;
  private readonly rooms: Rooms;

  constructor(options: SwitchboardOptions) {
    this.store = options.store;
    this.now = options.now ?? Date.now;
    this.rooms = new Rooms(options.io);
    this.registry = new Registry({
      store: options.store,
      config: options.config,
      logger: options.logger,
      now: this.now,
      rooms: this.rooms,
      inspect: options.inspect,
      onReassignment: options.onReassignment,
    });
  }

  get presence(): Presence {
    return this.registry.feed.presence;
  }

  /** The agent has a socket to be rung on (told by its connection actor). */
  agentOnline(profile: { id: string; name: string; pools: string[] }): void {
    this.registry.directory.learn(profile);
    this.presence.connect(profile);
  }

  /** Sends each request that matches, after `prepare` (for a fresh agent list before it may move on). */
  private sendWhere(match: (entry: RequestEntry) => boolean, event: RoutingEvent, prepare?: (entry: RequestEntry) => void): void {
    for (const entry of [...this.registry.requests.values()]) {
      if (!match(entry)) continue;
      prepare?.(entry);
      entry.actor.send(event);
    }
  }

  private sendToCalls(person: Person, event: RoutingEvent): void {
    for (const call of views.callsOf(this.registry, person)) this.registry.requests.get(call.requestId)?.actor.send(event);
  }

  private holds = (agentId: string) => (entry: RequestEntry) => entry.actor.getSnapshot().context.currentAgentId === agentId;
  private refresh = (entry: RequestEntry) => this.registry.refreshAgents(entry);

  // -------------------------------------------------------------------------------------------
  // Requests

  private refuseSecondRequest(visitorId: string): void {
    const existing = [...this.registry.requests.values()].find((entry) => entry.visitorId === visitorId);
    if (existing) throw new SwitchboardError('conflict', 'You already have a call request in progress.');
  }

  /** Answers the new request's id once its record and first step are committed (and their messages sent). */
  async request(visitor: { visitorId: string; name: string }, pool: string): Promise<string> {
    this.refuseSecondRequest(visitor.visitorId);
    // A pool no agent account serves would only hold the visitor in the queue until it gives up.
    if (!(await storeRead(this.store.agents.servesPool(pool)))) {
      throw new SwitchboardError('not-found', 'Nobody takes calls for this pool.');
    }
    // Another request of theirs may have been made while the store answered.
    this.refuseSecondRequest(visitor.visitorId);
    const requestId = `req_${randomUUID()}`;
    const entry = this.registry.create({ requestId, visitorId: visitor.visitorId, visitorName: visitor.name, pool, createdAt: this.now() });
    await new Promise<void>((resolve) => entry.journal.afterDelivery(resolve));
    return requestId;
  }

  cancel(visitorId: string, requestId: string): void {
    access.ownRequest(this.registry, visitorId, requestId).actor.send({ type: 'visitor.cancelled', at: this.now() });
  }

  accept(agentId: string, requestId: string): void {
    const callId = `call_${randomUUID()}`;
    access.ringFor(this.registry, agentId, requestId).actor.send({ type: 'agent.accepted', agentId, callId, at: this.now() });
  }

  reject(agentId: string, requestId: string): void {
    access.ringFor(this.registry, agentId, requestId).actor.send({ type: 'agent.rejected', agentId, at: this.now() });
  }

  /** Away, logout and a dropped last socket reach every request that holds the agent, and its calls. */
  agentLost(agentId: string, cause: 'socket' | 'away' | 'logout'): void {
    const at = this.now();
    this.sendWhere(this.holds(agentId), { type: 'agent.lost', agentId, cause, at }, this.refresh);
    if (cause === 'socket') this.sendToCalls({ kind: 'agent', id: agentId }, { type: 'leg.socketLost', leg: 'agent', at });
  }

  agentReturned(agentId: string): void {
    const at = this.now();
    this.sendWhere(this.holds(agentId), { type: 'agent.returned', agentId, at });
    this.sendToCalls({ kind: 'agent', id: agentId }, { type: 'leg.socketBack', leg: 'agent', at });
  }

  /**
   * A ring sent while the agent had no socket (or before a restart) reaches whichever socket it opens next,
   * once whatever the request had still to send has gone, and only if it still rings this agent then. It is
   * a message of its own: the socket may belong to a client that dropped the ring when its connection went.
   */
  resendRings(agentId: string): void {
    const ringsAgent = (entry: RequestEntry) => {
      const snapshot = entry.actor.getSnapshot();
      return this.registry.requests.get(entry.requestId) === entry && snapshot.context.currentAgentId === agentId && snapshot.matches('ringing');
    };
    for (const entry of this.registry.requests.values()) {
      if (!ringsAgent(entry)) continue;
      entry.journal.afterDelivery(() => {
        if (!ringsAgent(entry)) return;
        const expiresAt = entry.actor.getSnapshot().context.deadlineAt ?? this.now();
        this.rooms.emit(agentRoom(agentId), 'agent.ring', { requestId: entry.requestId, visitorName: entry.visitorName, expiresAt });
      });
    }
  }

  visitorLost(visitorId: string): void {
    const at = this.now();
    this.sendWhere((entry) => entry.visitorId === visitorId, { type: 'visitor.away', at }, this.refresh);
    this.sendToCalls({ kind: 'visitor', id: visitorId }, { type: 'leg.socketLost', leg: 'visitor', at });
  }

  visitorReturned(visitorId: string): void {
    const at = this.now();
    this.sendWhere((entry) => entry.visitorId === visitorId, { type: 'visitor.back', at }, this.refresh);
    this.sendToCalls({ kind: 'visitor', id: visitorId }, { type: 'leg.socketBack', leg: 'visitor', at });
  }

  /** The visitor did not come back within the resume window: a request not in a call gives up. */
  visitorGone(visitorId: string): void {
    this.sendWhere((entry) => entry.visitorId === visitorId, { type: 'visitor.gone', at: this.now() });
  }

  /** Visitors whose restored requests wait for them: each gets the resume window to come back. */
  waitingVisitors(): string[] {
    return [...new Set([...this.registry.waiting].map((entry) => entry.visitorId))];
  }

  // -------------------------------------------------------------------------------------------
  // Calls

  legOf(callId: string, person: Person): { entry: CallEntry; leg: Leg; peerRoom: string } {
    return access.legOf(this.registry, callId, person);
  }

  private sendToCall(callId: string, event: RoutingEvent): void {
    const call = this.registry.calls.get(callId);
    if (call) this.registry.requests.get(call.requestId)?.actor.send(event);
  }

  callEvent(callId: string, leg: Leg, event: 'leg.mediaConnected' | 'leg.mediaReconnecting' | 'leg.mediaFailed'): void {
    if (!this.registry.calls.has(callId)) return;
    const at = this.now();
    // A peer connection is up for both ends at once, so the first report of it dates the call's start; the
    // write goes with the step the event makes.
    if (event === 'leg.mediaConnected') {
      const requestId = this.registry.calls.get(callId)?.requestId;
      const entry = requestId === undefined ? undefined : this.registry.requests.get(requestId);
      entry?.journal.write((writes) => writes.calls.markConnected(callId, at));
    }
    this.sendToCall(callId, { type: event, leg, at });
  }

  callAttempt(callId: string, leg: Leg, attempt: { at: number; durationMs: number; outcome: 'recovered' | 'failed' }): void {
    this.sendToCall(callId, { type: 'leg.attempt', leg, ...attempt });
  }

  hangup(callId: string, leg: Leg): void {
    this.sendToCall(callId, { type: 'call.hangup', by: leg, at: this.now() });
  }

  callFor(person: Person): ServerPayload<'session.resumed'>['call'] {
    return views.callFor(this.registry, person);
  }

  roomsFor(person: Person): string[] {
    return views.roomsFor(this.registry, person);
  }

  requestFor(visitorId: string): ServerPayload<'session.resumed'>['request'] {
    return views.requestFor(this.registry, visitorId);
  }

  requestOf(person: Person, ref: { requestId?: string | undefined; callId?: string | undefined }): { requestId: string; callId: string | null } {
    return access.requestOf(this.registry, person, ref);
  }

  // -------------------------------------------------------------------------------------------
  // Restart recovery

  /**
   * Reads what the effects need from memory (the agents, their chosen statuses), then brings back every
   * persisted tree, started but with its timers not yet running: call `armRestored()` once the server
   * listens, so that the time the restore itself takes is not taken from anyone's deadlines.
   */
  async restore(): Promise<{ requests: number; calls: number }> {
    await this.registry.load();
    return this.registry.restore();
  }

  /**
   * Re-arms the restored trees' timers (XState does not restore them) and marks both legs of every call lost:
   * their sockets went with the old process. From here the reconnection windows run. Resolves once what
   * that made the trees do is committed.
   */
  async armRestored(lostAt: number | null = null): Promise<void> {
    await this.registry.armRestored(lostAt);
  }

  /** When the process last knew itself alive; the next one dates every socket it lost from this. */
  async lastAliveAt(): Promise<number | null> {
    const value = Number(await this.store.settings.get(ALIVE_SETTING));
    return Number.isFinite(value) && value > 0 ? value : null;
  }

  async markAlive(): Promise<void> {
    await this.store.settings.set(ALIVE_SETTING, String(this.now()));
  }

  /** Stops every tree; what their steps wrote is still being committed until `settled()` resolves. */
  stop(): void {
    this.registry.stopAll();
  }

  /** Resolves once the steps taken so far are committed and their messages sent; later ones are not waited for. */
  sent(): Promise<void> {
    return this.registry.journals.sent();
  }

  /** Resolves once every step taken so far (and any taken meanwhile) is committed and its messages sent. */
  settled(): Promise<void> {
    return this.registry.journals.settled();
  }

  // -------------------------------------------------------------------------------------------
  // Views

  routingSnapshot(requestId: string) {
    return this.registry.requests.get(requestId)?.actor.getSnapshot();
  }

  callSnapshot(callId: string) {
    return this.registry.callActor(callId)?.getSnapshot();
  }

  live(): LiveRequest[] {
    return views.live(this.registry);
  }

  queuedCount(): number {
    return views.queuedCount(this.registry);
  }

  stats(): { requests: number; calls: number } {
    return { requests: this.registry.requests.size, calls: this.registry.calls.size };
  }
}
