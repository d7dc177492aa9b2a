/**
 * The adapter between sockets and the server's machines: one actor tree per visitor request (routing, which
 * invokes a callSession for the call). It turns socket facts into machine events; the machines' named
 * effects (effects.ts) turn into store writes and emits, and each step's emits go out once its writes are
 * committed (journal.ts). Who gets rung, when a call pauses, resumes, ends or is reassigned: the machines
 * decide all of that.
 *
 * In a cluster (`cluster` given) each request's tree runs on the one node that holds its lease, and every
 * call into the switchboard is routed: a command about a request or call runs at its owner and answers
 * what it answered there (a promise, here); a fact about a person goes to every node, each applying it to
 * the trees it runs; a question is answered from the shared call facts in Redis, or by the owner. In one
 * process everything runs here, at once, as it always did.
 */
import { randomUUID } from 'node:crypto';
import type { InspectionEvent } from 'xstate';
import { z } from 'zod';
import type { CallLeg as Leg, LiveRequest, RoutingEvent, ServerPayload } from '@callchart/machines';
import type { TreeMember } from '../actorHost.ts';
import type { AgentClaims } from '../cluster/agentClaims.ts';
import type { ClusterBus } from '../cluster/bus.ts';
import { RequestConflictError, type Ownership } from '../cluster/ownership.ts';
import type { ServerConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Presence } from '../presence.ts';
import type { Fence, Store } from '../store.ts';
import { storeRead } from '../storeReads.ts';
import * as access from './access.ts';
import { SwitchboardError, type CallEntry, type RequestEntry } from './entries.ts';
import { Registry } from './registry.ts';
import { agentRoom, personRoom, Rooms, visitorRoom, type Person, type SwitchboardIo } from './rooms.ts';
import * as views from './views.ts';

export { SwitchboardError } from './entries.ts';
export { agentRoom, callRoom, visitorRoom } from './rooms.ts';
export type { LiveRequest };
export type { LegOfCall } from './access.ts';

/** The store setting the heartbeat writes; see `lastAliveAt()`. */
const ALIVE_SETTING = 'server.aliveAt';

/** A cluster node's parts the switchboard routes through. */
export interface SwitchboardCluster {
  bus: ClusterBus;
  ownership: Ownership;
  /** The shared presence, in Redis: a ring goes out only once its agent is held for its request. */
  claims: AgentClaims;
}

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
  /** Null or absent: one process. */
  cluster?: SwitchboardCluster | null;
  /**
   * A request taken over whose visitor has no socket anywhere: they get the resume window to come back
   * (the connections' part), as a restart gives them.
   */
  awaitVisitors?: (visitorIds: string[]) => void;
}

/** What a command answers: nothing, at once in one process, once its owner has run it in a cluster. */
export type Done = void | Promise<void>;
/** What a question answers: at once in one process, once it is known in a cluster. */
export type Answer<T> = T | Promise<T>;

type CallView = ServerPayload<'session.resumed'>['call'];
type RequestView = ServerPayload<'session.resumed'>['request'];
type CallEventType = 'leg.mediaConnected' | 'leg.mediaReconnecting' | 'leg.mediaFailed';
type Attempt = { at: number; durationMs: number; outcome: 'recovered' | 'failed' };
type AgentProfile = { id: string; name: string; pools: string[] };

// What a node accepts from another over the bus: ours, but checked, as every input is.
const Text = z.string().min(1).max(200);
const PersonArg = z.object({ kind: z.enum(['agent', 'visitor']), id: Text });
const LegArg = z.enum(['agent', 'visitor']);
const COMMANDS = {
  cancel: z.tuple([Text, Text]),
  accept: z.tuple([Text, Text, Text]),
  reject: z.tuple([Text, Text]),
  callEvent: z.tuple([Text, LegArg, z.enum(['leg.mediaConnected', 'leg.mediaReconnecting', 'leg.mediaFailed'])]),
  callAttempt: z.tuple([Text, LegArg, z.object({ at: z.number(), durationMs: z.number(), outcome: z.enum(['recovered', 'failed']) })]),
  hangup: z.tuple([Text, LegArg]),
  requestOf: z.tuple([PersonArg, z.object({ requestId: z.optional(Text), callId: z.optional(Text) })]),
  callFor: z.tuple([PersonArg]),
  requestFor: z.tuple([Text]),
} as const;
type CommandName = keyof typeof COMMANDS;
const FACTS = {
  agentKnown: z.tuple([z.object({ id: Text, name: z.string().max(200), pools: z.array(Text).max(100) })]),
  agentLost: z.tuple([Text, z.enum(['socket', 'away', 'logout'])]),
  agentReturned: z.tuple([Text]),
  resendRings: z.tuple([Text]),
  visitorLost: z.tuple([Text]),
  visitorReturned: z.tuple([Text]),
  visitorGone: z.tuple([Text]),
} as const;
type FactName = keyof typeof FACTS;

export class Switchboard {
  readonly now: () => number;
  private readonly store: Store;
  private readonly registry: Registry;
  private readonly rooms: Rooms;
  private readonly logger: Logger;
  private readonly cluster: SwitchboardCluster | null;
  /** Facts about one person, in the order they happened: one may wait on the cluster, the next must wait for it. */
  private readonly facts = new Map<string, Promise<void>>();
  /** Set once the trees are handed off or stopped: no new request is taken here. */
  private closed = false;

  constructor(private readonly options: SwitchboardOptions) {
    this.store = options.store;
    this.now = options.now ?? Date.now;
    this.logger = options.logger;
    this.cluster = options.cluster ?? null;
    this.rooms = new Rooms(options.io);
    const cluster = this.cluster;
    this.registry = new Registry({
      store: options.store,
      config: options.config,
      logger: options.logger,
      now: this.now,
      rooms: this.rooms,
      inspect: options.inspect,
      onReassignment: options.onReassignment,
      cluster: cluster && {
        calls: { joined: (call) => cluster.ownership.callJoined(call), left: (callId) => cluster.ownership.callLeft(callId) },
        claims: cluster.claims,
        ended: (entry) => {
          cluster.ownership.end(entry.requestId, entry.visitorId).catch((error: unknown) => this.logger.error({ err: error, requestId: entry.requestId }, 'could not tell the cluster a request ended'));
        },
        dropped: (requestId) => this.forgetLease(requestId),
      },
    });
  }

  get presence(): Presence {
    return this.registry.feed.presence;
  }

  /** The agent has a socket to be rung on (told by its connection actor). */
  agentOnline(profile: AgentProfile): void {
    this.registry.directory.learn(profile);
    this.presence.connect(profile);
    // Every node names the agent in the calls and rings it runs, whoever seeded the account and when.
    if (this.cluster) this.tellOthers('agentKnown', [profile]);
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

  /**
   * Answers the new request's id once its record and first step are committed (and their messages sent).
   * In a cluster the request runs here, under a lease taken first, and only if the visitor has no other
   * live request on any node.
   */
  async request(visitor: { visitorId: string; name: string }, pool: string): Promise<string> {
    this.refuseSecondRequest(visitor.visitorId);
    // A pool no agent account serves would only hold the visitor in the queue until it gives up.
    if (!(await storeRead(this.store.agents.servesPool(pool)))) {
      throw new SwitchboardError('not-found', 'Nobody takes calls for this pool.');
    }
    // Another request of theirs may have been made while the store answered.
    this.refuseSecondRequest(visitor.visitorId);
    const requestId = `req_${randomUUID()}`;
    const fence = this.cluster ? await this.begin(visitor.visitorId, requestId) : undefined;
    const entry = this.registry.create({ requestId, visitorId: visitor.visitorId, visitorName: visitor.name, pool, createdAt: this.now() }, fence);
    await new Promise<void>((resolve) => entry.journal.afterDelivery(resolve));
    return requestId;
  }

  private async begin(visitorId: string, requestId: string): Promise<Fence> {
    const { ownership } = this.cluster!;
    if (this.closed) throw new SwitchboardError('unavailable', 'This server is shutting down; please try again.');
    let fence: Fence;
    try {
      fence = await ownership.begin(visitorId, requestId);
    } catch (error) {
      if (error instanceof RequestConflictError) throw new SwitchboardError('conflict', 'You already have a call request in progress.');
      this.logger.warn({ err: error, requestId }, 'could not take the lease of a new request');
      throw new SwitchboardError('unavailable', 'The server cannot reach its cluster right now; nothing was done. Please try again.');
    }
    // One of theirs made here meanwhile, or the node began handing its trees off.
    try {
      this.refuseSecondRequest(visitorId);
      if (this.closed) throw new SwitchboardError('unavailable', 'This server is shutting down; please try again.');
    } catch (error) {
      await ownership.end(requestId, visitorId).catch(() => undefined);
      throw error;
    }
    return fence;
  }

  cancel(visitorId: string, requestId: string): Done {
    return this.atOwner(requestId, 'cancel', [visitorId, requestId]);
  }

  accept(agentId: string, requestId: string): Done {
    return this.atOwner(requestId, 'accept', [agentId, requestId, `call_${randomUUID()}`]);
  }

  reject(agentId: string, requestId: string): Done {
    return this.atOwner(requestId, 'reject', [agentId, requestId]);
  }

  /** Away, logout and a dropped last socket reach every request that holds the agent, and its calls. */
  agentLost(agentId: string, cause: 'socket' | 'away' | 'logout'): void {
    this.fact({ kind: 'agent', id: agentId }, 'agentLost', [agentId, cause], cause === 'socket');
  }

  agentReturned(agentId: string): void {
    this.fact({ kind: 'agent', id: agentId }, 'agentReturned', [agentId]);
  }

  /**
   * A ring sent while the agent had no socket (or before a restart) reaches whichever socket it opens next,
   * once whatever the request had still to send has gone, and only if it still rings this agent then. It is
   * a message of its own: the socket may belong to a client that dropped the ring when its connection went.
   */
  resendRings(agentId: string): void {
    this.fact({ kind: 'agent', id: agentId }, 'resendRings', [agentId]);
  }

  visitorLost(visitorId: string): void {
    this.fact({ kind: 'visitor', id: visitorId }, 'visitorLost', [visitorId], true);
  }

  visitorReturned(visitorId: string): void {
    this.fact({ kind: 'visitor', id: visitorId }, 'visitorReturned', [visitorId]);
  }

  /** The visitor did not come back within the resume window: a request not in a call gives up. */
  visitorGone(visitorId: string): void {
    this.fact({ kind: 'visitor', id: visitorId }, 'visitorGone', [visitorId], true);
  }

  /** Visitors whose restored requests wait for them: each gets the resume window to come back. */
  waitingVisitors(): string[] {
    return [...new Set([...this.registry.waiting].map((entry) => entry.visitorId))];
  }

  // -------------------------------------------------------------------------------------------
  // Calls

  legOf(callId: string, person: Person): Answer<access.LegOfCall> {
    const cluster = this.cluster;
    if (!cluster || this.registry.calls.has(callId)) return access.legOf(this.registry, callId, person);
    return this.sharedCall(callId).then((call) => access.legIn(call, person));
  }

  callEvent(callId: string, leg: Leg, event: CallEventType): Done {
    return this.atCallOwner(callId, 'callEvent', [callId, leg, event]);
  }

  callAttempt(callId: string, leg: Leg, attempt: Attempt): Done {
    return this.atCallOwner(callId, 'callAttempt', [callId, leg, attempt]);
  }

  hangup(callId: string, leg: Leg): Done {
    return this.atCallOwner(callId, 'hangup', [callId, leg]);
  }

  callFor(person: Person): Answer<CallView> {
    const here = views.callFor(this.registry, person);
    if (!this.cluster || here) return here;
    return this.callForAnywhere(person);
  }

  roomsFor(person: Person): Answer<string[]> {
    const cluster = this.cluster;
    if (!cluster) return views.roomsFor(this.registry, person);
    return cluster.ownership.callsOf(person).then(
      (calls) => views.roomsFor(this.registry, person, [...this.registry.calls.values(), ...calls]),
      (error: unknown) => {
        this.logger.warn({ err: error, person }, "could not read a person's calls from the cluster; only this node's are joined");
        return views.roomsFor(this.registry, person);
      },
    );
  }

  requestFor(visitorId: string): Answer<RequestView> {
    const here = views.requestFor(this.registry, visitorId);
    if (!this.cluster || here) return here;
    return this.requestForAnywhere(visitorId);
  }

  requestOf(person: Person, ref: { requestId?: string | undefined; callId?: string | undefined }): Answer<{ requestId: string; callId: string | null }> {
    const cluster = this.cluster;
    if (!cluster) return access.requestOf(this.registry, person, ref);
    return (async () => {
      if (ref.callId !== undefined) {
        const { entry } = await this.legOf(ref.callId, person);
        if (ref.requestId !== undefined && ref.requestId !== entry.requestId) throw new SwitchboardError('forbidden', 'This call belongs to another request.');
        return { requestId: entry.requestId, callId: entry.callId };
      }
      return this.atOwner<{ requestId: string; callId: string | null }>(ref.requestId ?? '', 'requestOf', [person, ref]);
    })();
  }

  // -------------------------------------------------------------------------------------------
  // What runs here: the one process's whole switchboard, and a cluster owner's part of it

  private cancelHere(visitorId: string, requestId: string): void {
    access.ownRequest(this.registry, visitorId, requestId).actor.send({ type: 'visitor.cancelled', at: this.now() });
  }

  private acceptHere(agentId: string, requestId: string, callId: string): void {
    access.ringFor(this.registry, agentId, requestId).actor.send({ type: 'agent.accepted', agentId, callId, at: this.now() });
  }

  private rejectHere(agentId: string, requestId: string): void {
    access.ringFor(this.registry, agentId, requestId).actor.send({ type: 'agent.rejected', agentId, at: this.now() });
  }

  private sendToCall(callId: string, event: RoutingEvent): void {
    const call = this.registry.calls.get(callId);
    if (call) this.registry.requests.get(call.requestId)?.actor.send(event);
  }

  private callEventHere(callId: string, leg: Leg, event: CallEventType): void {
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

  private callAttemptHere(callId: string, leg: Leg, attempt: Attempt): void {
    this.sendToCall(callId, { type: 'leg.attempt', leg, ...attempt });
  }

  private hangupHere(callId: string, leg: Leg): void {
    this.sendToCall(callId, { type: 'call.hangup', by: leg, at: this.now() });
  }

  private runHere(name: CommandName, a: unknown[]): unknown {
    switch (name) {
      case 'cancel':
        return this.cancelHere(a[0] as string, a[1] as string);
      case 'accept':
        return this.acceptHere(a[0] as string, a[1] as string, a[2] as string);
      case 'reject':
        return this.rejectHere(a[0] as string, a[1] as string);
      case 'callEvent':
        return this.callEventHere(a[0] as string, a[1] as Leg, a[2] as CallEventType);
      case 'callAttempt':
        return this.callAttemptHere(a[0] as string, a[1] as Leg, a[2] as Attempt);
      case 'hangup':
        return this.hangupHere(a[0] as string, a[1] as Leg);
      case 'requestOf':
        return access.requestOf(this.registry, a[0] as Person, a[1] as { requestId?: string; callId?: string });
      case 'callFor':
        return views.callFor(this.registry, a[0] as Person);
      case 'requestFor':
        return views.requestFor(this.registry, a[0] as string);
    }
  }

  private applyHere(name: FactName, [first, second]: unknown[]): void {
    const at = this.now();
    switch (name) {
      case 'agentKnown':
        this.registry.directory.learn(first as AgentProfile);
        return;
      case 'agentLost': {
        const agentId = first as string;
        this.sendWhere(this.holds(agentId), { type: 'agent.lost', agentId, cause: second as 'socket' | 'away' | 'logout', at }, this.refresh);
        if (second === 'socket') this.sendToCalls({ kind: 'agent', id: agentId }, { type: 'leg.socketLost', leg: 'agent', at });
        return;
      }
      case 'agentReturned': {
        const agentId = first as string;
        this.sendWhere(this.holds(agentId), { type: 'agent.returned', agentId, at });
        this.sendToCalls({ kind: 'agent', id: agentId }, { type: 'leg.socketBack', leg: 'agent', at });
        return;
      }
      case 'resendRings':
        this.resendRingsHere(first as string);
        return;
      case 'visitorLost': {
        const visitorId = first as string;
        this.sendWhere((entry) => entry.visitorId === visitorId, { type: 'visitor.away', at }, this.refresh);
        this.sendToCalls({ kind: 'visitor', id: visitorId }, { type: 'leg.socketLost', leg: 'visitor', at });
        return;
      }
      case 'visitorReturned': {
        const visitorId = first as string;
        this.sendWhere((entry) => entry.visitorId === visitorId, { type: 'visitor.back', at }, this.refresh);
        this.sendToCalls({ kind: 'visitor', id: visitorId }, { type: 'leg.socketBack', leg: 'visitor', at });
        return;
      }
      case 'visitorGone': {
        const visitorId = first as string;
        this.sendWhere((entry) => entry.visitorId === visitorId, { type: 'visitor.gone', at });
        return;
      }
    }
  }

  private resendRingsHere(agentId: string): void {
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

  // -------------------------------------------------------------------------------------------
  // Routing in a cluster

  /** Runs the command here in one process, or at the request's owner in a cluster. */
  private atOwner<T = void>(requestId: string, name: CommandName, args: unknown[]): Answer<T> {
    const cluster = this.cluster;
    if (!cluster) return this.runHere(name, args) as T;
    return cluster.bus.forward(requestId, name, args, () => this.runHere(name, args) as T);
  }

  /** A call command runs at the owner of the call's request; a call no node knows is no call, as here. */
  private atCallOwner(callId: string, name: CommandName, args: unknown[]): Done {
    const cluster = this.cluster;
    const local = this.registry.calls.get(callId);
    if (!cluster) return this.atOwner(local?.requestId ?? '', name, args);
    return (async () => {
      const requestId = local?.requestId ?? (await this.sharedCall(callId))?.requestId;
      if (requestId === undefined) return;
      await this.atOwner(requestId, name, args);
    })();
  }

  /** The call as every node reads it; a Redis that cannot answer makes the call unknown for now. */
  private async sharedCall(callId: string): Promise<CallEntry | null> {
    try {
      return await this.cluster!.ownership.call(callId);
    } catch (error) {
      this.logger.warn({ err: error, callId }, 'could not read a call from the cluster');
      throw new SwitchboardError('unavailable', 'The server cannot reach its cluster right now; nothing was done. Please try again.');
    }
  }

  private async callForAnywhere(person: Person): Promise<CallView> {
    const { ownership, bus } = this.cluster!;
    let call: CallEntry | undefined;
    try {
      [call] = await ownership.callsOf(person);
    } catch (error) {
      this.logger.warn({ err: error, person }, "could not read a person's calls from the cluster");
      return null;
    }
    if (!call) return null;
    try {
      return await bus.forward(call.requestId, 'callFor', [person], () => views.callFor(this.registry, person));
    } catch (error) {
      // Its owner is being replaced: the call goes on, and what a pause would add is sent when it happens.
      this.logger.warn({ err: error, callId: call.callId }, 'the owner of a call could not say how it stands; told as active');
      return views.callView(call, person, false);
    }
  }

  private async requestForAnywhere(visitorId: string): Promise<RequestView> {
    const { ownership, bus } = this.cluster!;
    try {
      const requestId = await ownership.requestOfVisitor(visitorId);
      if (requestId === null) return null;
      return await bus.forward(requestId, 'requestFor', [visitorId], () => views.requestFor(this.registry, visitorId));
    } catch (error) {
      this.logger.warn({ err: error, visitorId }, "could not learn where a visitor's request stands");
      return null;
    }
  }

  /**
   * A fact about a person: applied here and told to every other node, in the order the person's facts
   * happened. In a cluster a lost socket (and a resume window run out) is a fact only if the person has no
   * socket on any node: a connection of theirs on another node still reaches them.
   */
  private fact(person: Person, name: FactName, args: unknown[], onlyIfGoneEverywhere = false): void {
    const cluster = this.cluster;
    if (!cluster) {
      this.applyHere(name, args);
      return;
    }
    const key = `${person.kind}:${person.id}`;
    const previous = this.facts.get(key) ?? Promise.resolve();
    const next = previous.then(async () => {
      if (onlyIfGoneEverywhere && (await this.rooms.occupied(personRoom(person))) === true) return;
      this.applyHere(name, args);
      await cluster.bus.tell(name, args);
    });
    const settled = next.catch((error: unknown) => this.logger.error({ err: error, name, person }, 'could not tell the cluster a fact about a person'));
    this.facts.set(key, settled);
    void settled.then(() => {
      if (this.facts.get(key) === settled) this.facts.delete(key);
    });
  }

  private tellOthers(name: FactName, args: unknown[]): void {
    this.cluster?.bus.tell(name, args).catch((error: unknown) => this.logger.warn({ err: error, name }, 'could not tell the cluster'));
  }

  /** Whether this node runs the request now: it has the tree, and a lease it may still act on. */
  private runs(requestId: string): boolean {
    return this.registry.requests.has(requestId) && this.cluster?.ownership.fence(requestId) != null;
  }

  /**
   * Starts the node's part of the cluster: it answers the other nodes, adds the store's live trees to the
   * cluster's (a cold start, or a Redis that lost its data), and from now on takes over requests nobody runs.
   */
  async joinCluster(): Promise<void> {
    const cluster = this.cluster;
    if (!cluster) return;
    await cluster.bus.start({
      runs: (requestId) => this.runs(requestId),
      run: (name, args) => {
        const parsed = Object.hasOwn(COMMANDS, name) ? COMMANDS[name as CommandName].safeParse(args) : null;
        if (!parsed?.success) throw new SwitchboardError('not-found', `A ${name} command arrived in a shape this server does not take.`);
        return this.runHere(name as CommandName, parsed.data);
      },
      apply: (name, args) => {
        const parsed = Object.hasOwn(FACTS, name) ? FACTS[name as FactName].safeParse(args) : null;
        if (parsed?.success) this.applyHere(name as FactName, parsed.data);
        else this.logger.warn({ name }, 'a fact from another node in a shape this server does not take was ignored');
      },
    });
    const records = await this.store.snapshots.all();
    await cluster.ownership.seedLive(records.filter((record) => record.kind === 'routing').map((record) => record.requestId));
    cluster.ownership.startAdopting((fence) => this.adopt(fence));
    void cluster.ownership.scanNow();
  }

  /**
   * Takes a request over under `fence`: its tree from the store, its last messages sent again, then what
   * this node can see that the old owner could not tell it (a leg with no socket anywhere is lost), then its
   * timers at their stored deadlines.
   */
  private async adopt(fence: Fence): Promise<boolean> {
    const adopted = await this.registry.adopt(fence);
    if (!adopted) return false;
    const { entry, calls } = adopted;
    const here = () => this.registry.requests.get(entry.requestId) === entry;
    for (const call of calls) {
      const [agentThere, visitorThere] = await Promise.all([this.rooms.occupied(agentRoom(call.agentId)), this.rooms.occupied(visitorRoom(call.visitorId))]);
      const at = this.now();
      if (agentThere === false && here()) {
        entry.actor.send({ type: 'agent.lost', agentId: call.agentId, cause: 'socket', at });
        entry.actor.send({ type: 'leg.socketLost', leg: 'agent', at });
      }
      if (visitorThere === false && here()) entry.actor.send({ type: 'leg.socketLost', leg: 'visitor', at });
    }
    if (calls.length === 0 && (await this.rooms.occupied(visitorRoom(entry.visitorId))) === false) this.options.awaitVisitors?.([entry.visitorId]);
    if (here()) entry.actor.send({ type: 'timers.rearm', at: this.now() });
    this.logger.info({ requestId: entry.requestId, token: fence.token, calls: calls.length }, 'took a request over');
    return true;
  }

  /** The lease of a request this node ran is lost: its tree stops here at once, without ending. */
  leaseLost(requestId: string): void {
    const had = this.registry.requests.has(requestId);
    this.registry.revoke(requestId);
    if (had) this.logger.warn({ requestId }, 'lost the lease of a request; its tree stopped here');
  }

  /** Redis lost its data and the lease keeper put a lease back: what the cluster knew of the request goes back too. */
  leaseRetaken(requestId: string): void {
    const entry = this.registry.requests.get(requestId);
    if (!entry || !this.cluster) return;
    const calls = [...this.registry.calls.values()].filter((call) => call.requestId === requestId);
    this.cluster.ownership
      .republish({ requestId, visitorId: entry.visitorId, calls })
      .catch((error: unknown) => this.logger.error({ err: error, requestId }, 'could not put a request back in the cluster'));
  }

  private forgetLease(requestId: string): void {
    this.cluster?.ownership.relinquish(requestId).catch(() => undefined);
  }

  /**
   * A draining node's last act in the cluster: it takes no more requests over and makes none, stops its
   * trees, waits for what their last steps wrote to be committed and sent, records that all of it was sent
   * (so the new owners send none of it again), and gives their leases back, so the other nodes take them
   * over at their next scan rather than after the TTL. It then waits (up to `awaitTakenMs`) for them to be
   * taken: the sockets here are still open while the new owners look for each leg's, so no call is told a
   * leg was lost when its person is only moving to another node.
   */
  async handOff(awaitTakenMs = 0): Promise<void> {
    const cluster = this.cluster;
    this.closed = true;
    if (!cluster) return this.stop();
    // A take-over this node had under way is handed off with the rest, not left to lapse after the TTL.
    await cluster.ownership.stopAdopting();
    const entries = [...this.registry.requests.values()];
    const requestIds = entries.map((entry) => entry.requestId);
    this.registry.stopAll();
    await this.registry.journals.settled();
    // Everything is sent now: a next owner that sent the last outboxes again would repeat what people heard.
    await Promise.all(entries.map((entry) => entry.journal.markSent()));
    await Promise.allSettled(requestIds.map((requestId) => cluster.ownership.relinquish(requestId)));
    await this.registry.feed.settled();
    this.registry.feed.stop();
    const untaken = requestIds.length > 0 && awaitTakenMs > 0 ? await cluster.ownership.awaitTaken(requestIds, awaitTakenMs).catch(() => requestIds) : [];
    this.logger.info({ requests: requestIds.length, untaken: untaken.length }, 'handed requests off to the cluster');
  }

  // -------------------------------------------------------------------------------------------
  // Restart recovery

  /**
   * Reads what the effects need from memory (the agents, their chosen statuses), then brings back every
   * persisted tree, started but with its timers not yet running: call `armRestored()` once the server
   * listens, so that the time the restore itself takes is not taken from anyone's deadlines. In a cluster
   * nothing is brought back here: the trees are the cluster's, and `joinCluster()` takes over those nobody runs.
   */
  async restore(): Promise<{ requests: number; calls: number }> {
    await this.registry.load();
    if (this.cluster) return { requests: 0, calls: 0 };
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
    this.closed = true;
    void this.cluster?.ownership.stopAdopting();
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
  // Views (of this node's trees)

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
