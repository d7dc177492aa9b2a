/**
 * connection: one actor per person (an agent or a visitor) on the server. It knows which of the person's
 * sockets are open, gives them the resume window to come back once the last one goes, and tells the server
 * what each change means for that person: online, lost, back, gone, away or logged out.
 *
 * Every event carries `at` (epoch ms, server clock); the machine has no clock of its own.
 */
import { assign, setup } from 'xstate';
import { armedTimer, eventTime, rearmedTimer, type TimerContext } from './serverClock.ts';

export type PersonKind = 'agent' | 'visitor';

export interface ConnectionTimings {
  /** How long a person without a socket keeps their request or call, and may take up their session again. */
  resumeWindow: number;
}

export const defaultConnectionTimings: ConnectionTimings = {
  resumeWindow: 40_000,
};

export interface ConnectionInput {
  kind: PersonKind;
  personId: string;
  timings?: Partial<ConnectionTimings>;
  at?: number;
  /**
   * Since when the person may have been without a socket, as far as this process can tell: the moment it
   * began taking connections, since a person it did not see before may have lost their socket with the last one.
   */
  windowFrom?: number;
}

export type ConnectionEvent =
  | { type: 'socket.connected'; socketId: string; at: number }
  /** The socket's session is set up: taken up again with a valid resume token (`resumed`) or fresh. */
  | { type: 'socket.ready'; socketId: string; resumed: boolean; at: number }
  /** An open socket took up the person's session again (`session.resume` after the handshake). */
  | { type: 'session.resumed'; socketId: string; at: number }
  | { type: 'socket.disconnected'; socketId: string; at: number }
  /** The agent chose a status; only agents have one. */
  | { type: 'presence.chosen'; status: 'available' | 'away'; at: number }
  /**
   * The agent logged out from one of `socketIds`: the sockets of that login session (the same token), every
   * one of which loses its powers. Sockets of the agent's other logins keep theirs.
   */
  | { type: 'session.loggedOut'; socketIds: string[]; at: number }
  /** The process began taking connections, and this person was restored from before it without a socket. */
  | { type: 'process.opened'; at: number }
  | { type: 'timers.rearm'; at: number };

export interface ConnectionContext extends TimerContext {
  kind: PersonKind;
  personId: string;
  /** The person's open sockets, oldest first. */
  sockets: string[];
  /** Sockets still open of a login session that logged out: they count for nothing and can do nothing. */
  revoked: string[];
  timings: ConnectionTimings;
  /** When the resume window began: the last socket going, or the process opening for a person not seen since. */
  windowFrom: number;
}

export function initialConnectionContext({ input }: { input: ConnectionInput }): ConnectionContext {
  const at = input.at ?? 0;
  return {
    kind: input.kind,
    personId: input.personId,
    sockets: [],
    revoked: [],
    timings: { ...defaultConnectionTimings, ...input.timings },
    windowFrom: input.windowFrom ?? at,
    deadlineAt: null,
    timerMs: 0,
    startedAt: at,
  };
}

/**
 * Whether the person may take up their session at `at`, asked for one of their open sockets. Another open
 * socket (a second tab) keeps the session going whatever the time; otherwise the window runs from `windowFrom`.
 */
export function withinResumeWindow(context: ConnectionContext, at: number): boolean {
  return context.sockets.length > 1 || at - context.windowFrom <= context.timings.resumeWindow;
}


function eventSocket(event: { type: string }): string | null {
  const socketId = (event as { socketId?: unknown }).socketId;
  return typeof socketId === 'string' ? socketId : null;
}

const knows = (context: ConnectionContext, event: { type: string }) => {
  const socketId = eventSocket(event);
  return socketId !== null && context.sockets.includes(socketId);
};
const isLast = (context: ConnectionContext, event: { type: string }) => knows(context, event) && context.sockets.length === 1;
const knowsRevoked = (context: ConnectionContext, event: { type: string }) => {
  const socketId = eventSocket(event);
  return socketId !== null && context.revoked.includes(socketId);
};
const loggedOutSockets = (event: ConnectionEvent) => (event.type === 'session.loggedOut' ? event.socketIds : []);
const isResumed = (event: ConnectionEvent) => event.type === 'socket.ready' && event.resumed;

export const connectionMachine = setup({
  types: {
    context: {} as ConnectionContext,
    events: {} as ConnectionEvent,
    input: {} as ConnectionInput,
  },
  actions: {
    addSocket: assign(({ context, event }) => {
      const socketId = eventSocket(event);
      if (socketId === null || context.sockets.includes(socketId)) return {};
      return { sockets: [...context.sockets, socketId] };
    }),
    removeSocket: assign(({ context, event }) => ({ sockets: context.sockets.filter((id) => id !== eventSocket(event)) })),
    /** The logged-out session's sockets stop counting as the person's. */
    retireSockets: assign(({ context, event }) => {
      const retired = loggedOutSockets(event).filter((id) => context.sockets.includes(id));
      const kept = context.revoked.filter((id) => !retired.includes(id));
      return { sockets: context.sockets.filter((id) => !retired.includes(id)), revoked: [...kept, ...retired] };
    }),
    forgetRevokedSocket: assign(({ context, event }) => ({ revoked: context.revoked.filter((id) => id !== eventSocket(event)) })),
    startGrace: assign(({ context, event }) => {
      const at = eventTime(context, event);
      return { windowFrom: at, ...armedTimer(at, context.timings.resumeWindow) };
    }),
    rearmTimer: assign(({ context, event }) => rearmedTimer(context, event)),
    clearTimer: assign({ deadlineAt: null, timerMs: 0 }),
    // Effects the server performs; it reads who from the actor's context.
    /** The agent can be rung on this socket: rings sent while it had none first, then presence. */
    bringAgentOnline: () => {},
    /** Presence shows the agent offline: no socket is left to ring. */
    takeAgentOffline: () => {},
    /** The person's last socket is gone; their request or call waits for them. */
    announceLoss: () => {},
    /** The person is back for their request or call. */
    announceReturn: () => {},
    /** The visitor did not come back within the window: a request not yet in a call is given up. */
    giveUpRequests: () => {},
    /** The agent's chosen status, for presence to show and remember. */
    recordChosenStatus: () => {},
    /** The agent went away: whatever rings or holds them moves on. */
    announceAway: () => {},
    /** The agent logged out: out of presence first, then whatever rings or holds them moves on. */
    signOut: () => {},
    /** The logged-out session's sockets leave every room and are refused whatever they send from now on. */
    cutOffSockets: () => {},
  },
  guards: {
    isAgent: ({ context }) => context.kind === 'agent',
    isVisitor: ({ context }) => context.kind === 'visitor',
    knowsSocket: ({ context, event }) => knows(context, event),
    isLastSocket: ({ context, event }) => isLast(context, event),
    isLastAgentSocket: ({ context, event }) => context.kind === 'agent' && isLast(context, event),
    knowsRevokedSocket: ({ context, event }) => knowsRevoked(context, event),
    isLastRevokedSocket: ({ context, event }) => knowsRevoked(context, event) && context.revoked.length === 1,
    // Another login of the agent's stays: only the session that logged out is cut off.
    otherLoginStays: ({ context, event }) => {
      const loggedOut = loggedOutSockets(event);
      return context.kind === 'agent' && context.sockets.some((id) => !loggedOut.includes(id));
    },
    // An agent whose other socket was open all along is back too: whatever waits for them hears it at once.
    agentSocketReturns: ({ context, event }) =>
      context.kind === 'agent' && knows(context, event) && (isResumed(event) || context.sockets.length > 1),
    agentSocketReady: ({ context, event }) => context.kind === 'agent' && knows(context, event),
    visitorResumed: ({ context, event }) => context.kind === 'visitor' && knows(context, event) && isResumed(event),
    choseAway: ({ event }) => event.type === 'presence.chosen' && event.status === 'away',
  },
  delays: {
    resumeWindow: ({ context }) => context.timerMs,
  },
}).createMachine({
  id: 'connection',
  description: "One person's sockets on the server: online while one is open, a grace of the resume window once the last goes, then gone.",
  context: initialConnectionContext,
  initial: 'offline',
  on: {
    // A cut-off socket closing, whatever the person's state: it already counted for nothing.
    'socket.disconnected': { guard: 'knowsRevokedSocket', actions: 'forgetRevokedSocket' },
  },
  states: {
    offline: {
      description:
        'Known to the server, with no socket yet. The first socket takes the person online; a person restored from before the process started waits out their grace from the moment it opens.',
      on: {
        'socket.connected': { target: 'online', actions: 'addSocket' },
        'process.opened': { target: 'grace', actions: 'startGrace' },
      },
    },
    online: {
      description: 'At least one socket is open. Each socket ready puts an agent online; the last one going starts the grace.',
      on: {
        'socket.connected': { actions: 'addSocket' },
        'socket.ready': [
          { guard: 'agentSocketReturns', actions: ['bringAgentOnline', 'announceReturn'] },
          { guard: 'agentSocketReady', actions: 'bringAgentOnline' },
          { guard: 'visitorResumed', actions: 'announceReturn' },
        ],
        'session.resumed': { guard: 'knowsSocket', actions: 'announceReturn' },
        'socket.disconnected': [
          { guard: 'isLastAgentSocket', target: 'grace', actions: ['removeSocket', 'startGrace', 'takeAgentOffline', 'announceLoss'] },
          { guard: 'isLastSocket', target: 'grace', actions: ['removeSocket', 'startGrace', 'announceLoss'] },
          { guard: 'knowsSocket', actions: 'removeSocket' },
        ],
        'presence.chosen': [
          { guard: 'choseAway', actions: ['recordChosenStatus', 'announceAway'] },
          { actions: 'recordChosenStatus' },
        ],
        'session.loggedOut': [
          { guard: 'otherLoginStays', actions: ['retireSockets', 'cutOffSockets'] },
          // Signed out before the sockets are cut off, so they still hear what their own logout ended.
          { guard: 'isAgent', target: 'loggedOut', actions: ['retireSockets', 'signOut', 'cutOffSockets'] },
        ],
      },
    },
    grace: {
      description:
        "No socket is open. The person keeps their request or call for the resume window, and may take up their session with their token until it runs out.",
      after: {
        resumeWindow: [
          { guard: 'isVisitor', target: 'gone', actions: 'giveUpRequests' },
          { target: 'gone' },
        ],
      },
      on: {
        'socket.connected': { target: 'online', actions: ['clearTimer', 'addSocket'] },
        'timers.rearm': { target: 'grace', reenter: true, actions: 'rearmTimer' },
      },
    },
    loggedOut: {
      description:
        "The agent's last login logged out: out of presence, with nothing left waiting for them. Its sockets, cut off, close on their own; a new one is a new login.",
      on: {
        'socket.connected': { target: 'online', actions: 'addSocket' },
        'socket.disconnected': { guard: 'isLastRevokedSocket', target: 'closed', actions: 'forgetRevokedSocket' },
      },
    },
    gone: {
      description: 'The resume window ran out. The server forgets the person; their next socket is a fresh start.',
      type: 'final',
    },
    closed: {
      description: "The logged-out agent's last socket closed. The server forgets them; their next socket is a new login.",
      type: 'final',
    },
  },
});

export type ConnectionMachine = typeof connectionMachine;
