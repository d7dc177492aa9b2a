/**
 * The named effects of a request's actor tree, as this server performs them: socket emits, store writes
 * and logs. Each does what its name says and nothing else; which one runs, and when, the machines decide.
 * Emits and writes go to the tree's journal, which commits them with the step and sends only after; what an
 * effect reads comes from memory (the agent directory, the live entries), never from the store.
 *
 * Provided once and shared by every request: an effect finds its request by the id in its context.
 * Providing per actor would build a whole machine per request, which is most of the cost of starting or
 * restoring one.
 */
import type { AnyMachineSnapshot } from 'xstate';
import {
  callSessionMachine,
  routingMachine,
  type CallSessionContext,
  type RoutingContext,
  type ServerPayload,
} from '@callchart/machines';
import type { ServerConfig } from '../config.ts';
import { callLogger, type Logger } from '../logger.ts';
import { iceServersForCall } from '../turnCredentials.ts';
import type { AgentDirectory } from './agentDirectory.ts';
import type { CallEntry, RequestEntry } from './entries.ts';
import type { Journal } from './journal.ts';
import type { PresenceFeed } from './presenceFeed.ts';
import { agentRoom, callRoom, visitorRoom } from './rooms.ts';

export interface EffectDeps {
  directory: AgentDirectory;
  config: ServerConfig;
  logger: Logger;
  now: () => number;
  feed: PresenceFeed;
  requests: ReadonlyMap<string, RequestEntry>;
  /** Live calls by id; the call effects add and remove them. */
  calls: Map<string, CallEntry>;
}

type Ctx = { context: RoutingContext };

/** The journal of a request whose tree is taking a step: it is live for as long as its tree runs. */
function journalOf(requests: ReadonlyMap<string, RequestEntry>, requestId: string): Journal {
  const entry = requests.get(requestId);
  if (!entry) throw new Error(`No live request ${requestId} for its own effect.`);
  return entry.journal;
}

export function provideRequestTree(deps: EffectDeps) {
  const { directory, config, logger, now, feed, requests, calls } = deps;
  const journal = (requestId: string) => journalOf(requests, requestId);
  /** A call's effects reach its request's journal through the live call. */
  const callJournal = (callId: string): Journal => {
    const call = calls.get(callId);
    if (!call) throw new Error(`No live call ${callId} for its own effect.`);
    return journal(call.requestId);
  };
  const notifyVisitor = (context: RoutingContext, payload: Omit<ServerPayload<'routing.update'>, 'requestId'>) => {
    journal(context.requestId).emit(visitorRoom(context.visitorId), 'routing.update', { requestId: context.requestId, ...payload });
  };
  const ended = (context: RoutingContext, reason: ServerPayload<'routing.ended'>['reason']) =>
    journal(context.requestId).emit(visitorRoom(context.visitorId), 'routing.ended', { requestId: context.requestId, reason });
  // The machine counts in logical time: a timeout's follow-up deadline runs from the deadline, not from the
  // moment the timer fired. Timers aimed at the deadline on the clock keep a late timer's lateness from
  // adding up over consecutive ring-outs, so the expiresAt an agent is told is when the ring really ends.
  const untilDeadline = ({ context }: { context: { deadlineAt: number | null; timerMs: number } }) =>
    context.deadlineAt === null ? context.timerMs : Math.max(0, context.deadlineAt - now());

  /** Closes the call's record and tells `room` it is over. */
  const closeCall = (context: RoutingContext, room: (entry: CallEntry) => string): CallEntry | null => {
    const end = context.callEnd;
    const entry = end ? calls.get(end.callId) : undefined;
    if (!end || !entry) return null;
    calls.delete(end.callId);
    const tree = journal(context.requestId);
    const patch = { state: 'ended', endedAt: now(), endReason: end.reason };
    tree.write((writes) => writes.calls.update(end.callId, patch));
    tree.emit(room(entry), 'call.ended', { callId: end.callId, reason: end.reason });
    tree.leaveCall(end.callId);
    feed.fromEffect((presence) => presence.release(entry.agentId, entry.requestId));
    callLogger(logger, end.callId).info({ reason: end.reason }, 'call ended');
    return entry;
  };

  const callSession = callSessionMachine.provide({
    actions: {
      notifyPaused: ({ context }) => callJournal(context.callId).emit(callRoom(context.callId), 'call.paused', { callId: context.callId, legs: context.legs }),
      notifyResumed: ({ context }) => callJournal(context.callId).emit(callRoom(context.callId), 'call.resumed', { callId: context.callId }),
    },
  });

  return routingMachine.provide({
    actors: { callSession },
    delays: { ringTimeout: untilDeadline, agentGrace: untilDeadline, maxQueueWait: untilDeadline },
    actions: {
      // In a cluster the ring carries its claim: it goes out only once the agent is held for this request.
      ringAgent: ({ context }: Ctx) => {
        const agentId = context.currentAgentId!;
        const claim = feed.ring(agentId, context.requestId);
        const payload = {
          requestId: context.requestId,
          visitorName: requests.get(context.requestId)?.visitorName ?? '',
          expiresAt: context.deadlineAt ?? now() + context.timings.ringTimeout,
        };
        journal(context.requestId).emit(agentRoom(agentId), 'agent.ring', payload, claim ? { claim } : {});
      },
      cancelRing: ({ context }: Ctx) => {
        const agentId = context.currentAgentId;
        if (!agentId) return;
        feed.fromEffect((presence) => presence.release(agentId, context.requestId));
        journal(context.requestId).emit(agentRoom(agentId), 'agent.ringCancelled', { requestId: context.requestId });
      },
      connectCall: ({ context }: Ctx) => {
        const request = requests.get(context.requestId);
        const agentId = context.currentAgentId!;
        const agentName = directory.name(agentId);
        const callId = context.callId!;
        if (!request || agentName === undefined) return;
        const at = now();
        const tree = request.journal;
        const call = { id: callId, requestId: request.requestId, visitorId: request.visitorId, visitorName: request.visitorName, agentId, pool: request.pool, state: 'active', startedAt: at };
        tree.write((writes) => writes.calls.create(call));
        tree.write((writes) => writes.agents.markAssigned(agentId, at));
        directory.assigned(agentId, at);
        feed.fromEffect((presence) => presence.assigned(agentId, at));
        calls.set(callId, { callId, requestId: request.requestId, agentId, agentName, visitorId: request.visitorId, visitorName: request.visitorName });
        tree.joinCall(callId, agentId, request.visitorId);
        const ice = { iceServers: iceServersForCall(config.ice, callId, at), iceTransportPolicy: config.ice.transportPolicy };
        tree.emit(agentRoom(agentId), 'call.accepted', { callId, role: 'offerer', peerName: request.visitorName, ...ice });
        tree.emit(visitorRoom(request.visitorId), 'call.accepted', { callId, role: 'answerer', peerName: agentName, ...ice });
        callLogger(logger, callId).info({ requestId: request.requestId, agentId, visitorId: request.visitorId }, 'call connected');
      },
      endCallForBoth: ({ context }: Ctx) => {
        closeCall(context, (entry) => callRoom(entry.callId));
      },
      // The visitor hears `routing.update` reassigning instead: a call.ended would end its whole session.
      endCallForAgent: ({ context }: Ctx) => {
        const entry = closeCall(context, (call) => agentRoom(call.agentId));
        if (!entry) return;
        const cause = context.lastTrigger?.cause ?? 'reassigned';
        const event = { callId: entry.callId, requestId: entry.requestId, actor: 'server' as const, type: 'reassigned', cause, at: now() };
        journal(entry.requestId).write((writes) => writes.events.append(event));
      },
      notifyVisitorSearching: ({ context }: Ctx) => notifyVisitor(context, { state: 'searching' }),
      notifyVisitorRinging: ({ context }: Ctx) => {
        const name = context.currentAgentId ? directory.name(context.currentAgentId) : undefined;
        notifyVisitor(context, name ? { state: 'ringing', agentName: name } : { state: 'ringing' });
      },
      notifyVisitorReassigning: ({ context }: Ctx) => notifyVisitor(context, { state: 'reassigning' }),
      notifyQueued: ({ context }: Ctx) =>
        notifyVisitor(context, context.queuePosition ? { state: 'queued', position: context.queuePosition } : { state: 'queued' }),
      notifyNoAgents: ({ context }: Ctx) => ended(context, 'no-agents'),
      notifyExhausted: ({ context }: Ctx) => ended(context, 'reassign-limit'),
      notifyCancelled: ({ context }: Ctx) => ended(context, 'cancelled'),
    },
  });
}

/** What the store keeps of a call as it goes: its telemetry, and whether it is paused. */
export function recordCallProgress(journal: Journal, parentLogger: Logger, next: AnyMachineSnapshot, previous: AnyMachineSnapshot | null): void {
  const context = next.context as CallSessionContext;
  const before = previous?.context as CallSessionContext | undefined;
  if (!context.callId) return;
  const { callId } = context;
  const logger = callLogger(parentLogger, callId);
  for (const d of context.disconnections.slice(before?.disconnections.length ?? 0)) {
    journal.write((writes) => writes.telemetry.append({ callId, kind: 'disconnection', leg: d.leg, at: d.at, cause: d.cause }));
    logger.info({ callId, leg: d.leg, cause: d.cause }, 'leg lost');
  }
  for (const a of context.reconnectionAttempts.slice(before?.reconnectionAttempts.length ?? 0)) {
    journal.write((writes) => writes.telemetry.append({ callId, kind: 'reconnection-attempt', leg: a.leg, at: a.at, durationMs: a.durationMs, outcome: a.outcome }));
    logger.info({ callId, leg: a.leg, durationMs: a.durationMs, outcome: a.outcome }, 'reconnection attempt');
  }
  // An ended call's record is closed by its request's effect, with the reason the request decided.
  const { totalPauseMs } = context;
  const patch = next.status === 'active' ? { state: next.hasTag('paused') ? 'paused' : 'active', totalPauseMs } : { totalPauseMs };
  journal.write((writes) => writes.calls.update(callId, patch));
}
