/**
 * One connection actor per person with a socket or a grace running: the only place that knows a person's
 * sockets and how long they may stay away. The socket layer routes socket facts here; the actors decide what
 * each means, and their named effects become switchboard and presence calls.
 */
import { createActor, type Actor } from 'xstate';
import { connectionMachine, initialConnectionContext, withinResumeWindow, type ConnectionEvent, type ConnectionInput, type PersonKind } from '@callchart/machines';
import type { Switchboard } from './switchboard/index.ts';

export interface Person {
  kind: PersonKind;
  id: string;
}

/** What presence shows of an agent; carried by each of the agent's sockets. */
export interface AgentProfile {
  id: string;
  name: string;
  pools: string[];
}

export const personKey = (person: Person) => `${person.kind}:${person.id}`;

type ConnectionActor = Actor<typeof connectionMachine>;

interface Entry {
  actor: ConnectionActor;
  /** The latest profile an agent's socket carried, for presence; null for visitors and for accounts that take no calls. */
  profile: AgentProfile | null;
  /** The login session (token id) of each open socket, so a logout finds every socket of its session. */
  sessions: Map<string, string>;
}

export interface ConnectionsOptions {
  windowMs: number;
  now?: () => number;
  /** Where the actors' effects go. Without it the actors only count sockets and windows, telling nobody. */
  switchboard?: Switchboard;
  /** Takes every power from these sockets: the socket layer's part of a logout. */
  cutOff?: (socketIds: readonly string[]) => void;
  /**
   * One node of a cluster: a person this node has not seen may have lost a socket on another node a moment
   * ago, so their window runs from when they are first seen here, not from when this process opened.
   */
  cluster?: boolean;
}

export class Connections {
  private readonly people = new Map<string, Entry>();
  private readonly now: () => number;
  /** When the process began taking connections: a person not seen since counts their window from there. */
  private openedAt: number;
  /** The machine as this server runs it, its effects provided once for every actor. */
  readonly logic: typeof connectionMachine;

  constructor(private readonly options: ConnectionsOptions) {
    this.now = options.now ?? Date.now;
    this.openedAt = this.now();
    this.logic = options.switchboard ? this.provide(options.switchboard) : connectionMachine;
  }

  /**
   * Call once the server listens: until then nobody could have come back, so no window has run. Visitors
   * whose restored requests wait for them get their grace from now, and give the request up if they stay away.
   */
  open(waitingVisitors: readonly string[] = []): void {
    this.openedAt = this.now();
    for (const id of waitingVisitors) this.entry({ kind: 'visitor', id }).actor.send({ type: 'process.opened', at: this.openedAt });
  }

  /**
   * Visitors of requests this node took over from another, with no socket on any node: each gets the resume
   * window from now to come back (anywhere), as a restart gives its waiting visitors.
   */
  awaitReturn(visitorIds: readonly string[]): void {
    const at = this.now();
    for (const id of visitorIds) this.entry({ kind: 'visitor', id }).actor.send({ type: 'process.opened', at });
  }

  /** `session`: the id of the token the socket presented. `profile`: null for an account that takes no calls. */
  connected(person: Person, socketId: string, profile: AgentProfile | null = null, session: string | null = null): void {
    const entry = this.entry(person);
    if (profile) entry.profile = profile;
    if (session !== null) entry.sessions.set(socketId, session);
    entry.actor.send({ type: 'socket.connected', socketId, at: this.now() });
  }

  /** The socket's session is set up, taken up again (`resumed`) or fresh. */
  ready(person: Person, socketId: string, resumed: boolean): void {
    this.send(person, { type: 'socket.ready', socketId, resumed, at: this.now() });
  }

  resumed(person: Person, socketId: string): void {
    this.send(person, { type: 'session.resumed', socketId, at: this.now() });
  }

  /** Returns true when that was the person's last socket (a cut-off socket never is). */
  disconnected(person: Person, socketId: string): boolean {
    const entry = this.people.get(personKey(person));
    if (!entry) return false;
    entry.sessions.delete(socketId);
    const { sockets, revoked } = entry.actor.getSnapshot().context;
    if (!sockets.includes(socketId) && !revoked.includes(socketId)) return false;
    entry.actor.send({ type: 'socket.disconnected', socketId, at: this.now() });
    return sockets.includes(socketId) && entry.actor.getSnapshot().context.sockets.length === 0;
  }

  chose(agentId: string, status: 'available' | 'away'): void {
    this.send({ kind: 'agent', id: agentId }, { type: 'presence.chosen', status, at: this.now() });
  }

  /** The agent logged out of login `session`: each socket that presented it is told apart for the actor. */
  loggedOut(agentId: string, session: string): void {
    const entry = this.people.get(personKey({ kind: 'agent', id: agentId }));
    if (!entry) return;
    const socketIds = [...entry.sessions].filter(([, of]) => of === session).map(([socketId]) => socketId);
    entry.actor.send({ type: 'session.loggedOut', socketIds, at: this.now() });
  }

  /** Whether the person, asking from one of their open sockets, is still within their resume window. */
  withinWindow(principalKey: string, at = this.now()): boolean {
    const actor = this.people.get(principalKey)?.actor;
    if (actor) return withinResumeWindow(actor.getSnapshot().context, at);
    const [kind, ...rest] = principalKey.split(':');
    if (kind !== 'agent' && kind !== 'visitor') return false;
    return withinResumeWindow(initialConnectionContext({ input: this.inputFor({ kind, id: rest.join(':') }) }), at);
  }

  hasSockets(person: Person): boolean {
    return (this.people.get(personKey(person))?.actor.getSnapshot().context.sockets.length ?? 0) > 0;
  }

  /** What the server knows of a person's connection right now; undefined once it has forgotten them. */
  snapshotOf(person: Person) {
    return this.people.get(personKey(person))?.actor.getSnapshot();
  }

  /** Stops every actor and its grace: the process is going, and the next one counts its own windows. */
  stop(): void {
    for (const { actor } of this.people.values()) actor.stop();
    this.people.clear();
  }

  /** Only to a person the server knows: a fact about a socket already forgotten changes nothing. */
  private send(person: Person, event: ConnectionEvent): void {
    this.people.get(personKey(person))?.actor.send(event);
  }

  private inputFor(person: Person): ConnectionInput {
    const at = this.now();
    return { kind: person.kind, personId: person.id, timings: { resumeWindow: this.options.windowMs }, at, windowFrom: this.options.cluster ? at : this.openedAt };
  }

  private entry(person: Person): Entry {
    const key = personKey(person);
    const known = this.people.get(key);
    if (known) return known;
    const actor = createActor(this.logic, { input: this.inputFor(person) });
    const entry: Entry = { actor, profile: null, sessions: new Map() };
    this.people.set(key, entry);
    // A person gone or logged out for good is forgotten: their next socket starts a new actor.
    actor.subscribe({
      complete: () => {
        if (this.people.get(key) === entry) this.people.delete(key);
      },
    });
    actor.start();
    return entry;
  }

  private provide(switchboard: Switchboard) {
    const profileOf = (agentId: string): AgentProfile | null => this.people.get(personKey({ kind: 'agent', id: agentId }))?.profile ?? null;
    return connectionMachine.provide({
      actions: {
        bringAgentOnline: ({ context }) => {
          // Rings from before this socket first: coming online can ring the agent for a waiting visitor, and
          // that ring, already sent, would otherwise arrive twice.
          switchboard.resendRings(context.personId);
          const profile = profileOf(context.personId);
          if (profile) switchboard.agentOnline(profile);
        },
        takeAgentOffline: ({ context }) => switchboard.presence.disconnect(context.personId),
        announceLoss: ({ context }) => {
          if (context.kind === 'agent') switchboard.agentLost(context.personId, 'socket');
          else switchboard.visitorLost(context.personId);
        },
        announceReturn: ({ context }) => {
          if (context.kind === 'agent') switchboard.agentReturned(context.personId);
          else switchboard.visitorReturned(context.personId);
        },
        giveUpRequests: ({ context }) => switchboard.visitorGone(context.personId),
        recordChosenStatus: ({ context, event }) => {
          if (event.type === 'presence.chosen') switchboard.presence.setChosen(context.personId, event.status);
        },
        announceAway: ({ context }) => switchboard.agentLost(context.personId, 'away'),
        signOut: ({ context }) => {
          // Gone from presence first: releasing the agent's ring or call would otherwise show it free for a
          // moment, and a visitor waiting in line would be rung to an agent who is logging out.
          switchboard.presence.remove(context.personId);
          switchboard.agentLost(context.personId, 'logout');
        },
        cutOffSockets: ({ event }) => {
          if (event.type === 'session.loggedOut') this.options.cutOff?.(event.socketIds);
        },
      },
    });
  }
}
