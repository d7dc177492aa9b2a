/**
 * The `/inspect` namespace across a cluster, carried by the Socket.IO adapter every node shares (rooms and
 * `serverSideEmit` through Redis). Each node keeps the timelines of the requests it runs; what an inspector
 * on any node sees is gathered from all of them:
 *
 * - **The list.** A node with inspectors asks every node for its report (`node.gather`, acknowledged by each
 *   with its live requests and gauges) when one connects, when a request moves, and every few seconds. A
 *   node that was asked lately sends its report again whenever its server actors move (`node.report`), and
 *   every node pushes the merged list to its own inspectors.
 * - **A request's timeline.** An inspector joins the request's room, and whichever node runs it sends the
 *   replay to that socket and each entry to the room. Both go through the same stream from the same node, so
 *   no entry falls between the replay and the next one; and when another node takes the request over, its
 *   entries go to the same room, so the inspector follows on. A node that took a request over replays what
 *   the store kept from before, then its own memory.
 * - **Client reports** reach the node of the person's socket, which hands them to the node that runs the
 *   request (`node.client`).
 *
 * Nothing of this runs while nobody watches: a node sends reports and entries only while it has inspectors
 * of its own or was asked for its report within the last `WATCH_MS`.
 */
import type { Namespace, Socket } from 'socket.io';
import { EpochMs, Id, INSPECTABLE_CLIENT_ACTORS, type TimelineEntry } from '@callchart/machines';
import { z } from 'zod/mini';
import { historyEntries, TIMELINE_LIMIT, type Inspection } from './inspection.ts';
import { NodeReport, PeerReports, type ClusterLiveList } from './inspectNodes.ts';
import type { Logger } from './logger.ts';
import type { Store } from './store.ts';
import { storeRead } from './storeReads.ts';

/** How often a node with inspectors asks for every node's report again: a node that died without a word drops out by then. */
export const REGATHER_MS = 5_000;
/** How long a node keeps reporting after it was last asked: a few gathers, so one lost on the way stops nothing. */
export const WATCH_MS = 3 * REGATHER_MS;
/**
 * Beyond the adapter's own wait for the nodes' answers (5 s, after which it gives what it has): it counts
 * the nodes in Redis first, and while Redis is away that count itself does not come back.
 */
const ASK_TIMEOUT_MS = 6_000;

const GATHER = 'node.gather';
const REPORT = 'node.report';
const REPLAY = 'node.replay';
const CLIENT = 'node.client';

/** The room of a request's inspectors, on every node. */
export function requestRoom(requestId: string): string {
  return `request:${requestId}`;
}

const ReplayAsk = z.object({ requestId: Id, socketId: z.string().check(z.minLength(1), z.maxLength(64)) });
const ReplayAnswer = z.object({ found: z.boolean() });
const ClientEntries = z.object({
  requestId: Id,
  callId: z.nullable(Id),
  side: z.enum(['agent', 'visitor']),
  kind: z.enum(INSPECTABLE_CLIENT_ACTORS),
  entries: z
    .array(
      z.object({
        at: EpochMs,
        actorId: z.optional(Id),
        event: z.looseObject({ type: z.string() }),
        state: z.unknown(),
        context: z.unknown(),
      }),
    )
    .check(z.maxLength(TIMELINE_LIMIT)),
});

/** No node answered in time: Redis is away, or the cluster is too busy to say. */
export class ClusterUnreachableError extends Error {
  override readonly name = 'ClusterUnreachableError';
}

export interface InspectClusterOptions {
  namespace: Namespace;
  node: string;
  inspection: Inspection;
  store: Store;
  logger: Logger;
  /** What this node runs and counts, read now. */
  own: () => NodeReport;
  clientInspection: boolean;
  /** How long the list waits for more changes before it goes out. */
  coalesceMs: number;
  now?: () => number;
}

type Ack = (reply: unknown) => void;

export class InspectCluster {
  private readonly peers: PeerReports;
  private readonly now: () => number;
  private watchedUntil = 0;
  private gathering: Promise<void> | null = null;
  private gatherAgain = false;
  private regather: NodeJS.Timeout | null = null;
  private listTimer: NodeJS.Timeout | null = null;
  private ownChanged = false;

  constructor(private readonly options: InspectClusterOptions) {
    const { namespace, inspection } = options;
    this.peers = new PeerReports(options.node);
    this.now = options.now ?? Date.now;

    namespace.on(GATHER, (report: unknown, ack: unknown) => {
      this.watchedUntil = this.now() + WATCH_MS;
      this.received(report);
      if (typeof ack === 'function') (ack as Ack)(this.options.own());
    });
    namespace.on(REPORT, (report: unknown) => this.received(report));
    namespace.on(REPLAY, (ask: unknown, ack: unknown) => {
      if (typeof ack !== 'function') return;
      const parsed = ReplayAsk.safeParse(ask);
      if (!parsed.success) return (ack as Ack)({ found: false });
      this.replayHere(parsed.data.requestId, parsed.data.socketId).then(
        (found) => (ack as Ack)({ found }),
        (error: unknown) => {
          this.options.logger.warn({ err: error, requestId: parsed.data.requestId }, 'inspector replay for another node failed');
          (ack as Ack)({ found: false });
        },
      );
    });
    namespace.on(CLIENT, (payload: unknown) => {
      const parsed = ClientEntries.safeParse(payload);
      if (!parsed.success) return this.options.logger.warn({ from: 'cluster' }, 'client inspection entries from another node in a shape this server does not take were ignored');
      const { requestId, callId, side, kind, entries } = parsed.data;
      inspection.addClient({ requestId, callId }, side, kind, entries, { forwarded: true });
    });

    // The sockets gauge moves with every connection, not with the server's actors.
    namespace.server.engine.on('connection', (connection: { once(event: 'close', listener: () => void): unknown }) => {
      this.changed();
      connection.once('close', () => this.changed());
    });
    inspection.onEntry((entry) => {
      if (this.watched()) namespace.to(requestRoom(entry.requestId)).emit('inspect.entry', entry);
    });
    inspection.sendClientEntriesElsewhere((target, side, kind, entries) => {
      if (!this.watched()) return;
      namespace.serverSideEmit(CLIENT, { requestId: target.requestId, callId: target.callId, side, kind, entries });
    });
  }

  /** Inspectors here, or on another node that asked lately. */
  private watched(): boolean {
    return this.options.namespace.sockets.size > 0 || this.now() < this.watchedUntil;
  }

  private received(report: unknown): void {
    if (report === undefined) return;
    const parsed = NodeReport.safeParse(report);
    if (!parsed.success) return this.options.logger.warn({ from: 'cluster' }, 'an inspector report from another node in a shape this server does not take was ignored');
    const moved = this.peers.apply(parsed.data);
    if (this.options.namespace.sockets.size === 0) return;
    // The node it left may have died: asking again drops it, and its gauges, at once.
    if (moved) void this.gather();
    this.schedule();
  }

  /** The cluster's list as this node knows it now. */
  list(): ClusterLiveList {
    return { ...this.peers.merged(this.options.own()), clientInspection: this.options.clientInspection };
  }

  /** Every node's report asked for anew, then the list. */
  async fresh(): Promise<ClusterLiveList> {
    await this.gather();
    return this.list();
  }

  /** This node's server actors moved: its inspectors, and the nodes watching, hear of it within `coalesceMs`. */
  changed(): void {
    if (!this.watched()) return;
    this.ownChanged = true;
    this.schedule();
  }

  /** An inspector socket connected here: this node asks for the others' reports while it has any. */
  opened(): void {
    if (this.regather) return;
    this.regather = setInterval(() => void this.gather(), REGATHER_MS);
    this.regather.unref();
  }

  /** An inspector socket here went away. */
  closed(): void {
    if (this.options.namespace.sockets.size > 0 || !this.regather) return;
    clearInterval(this.regather);
    this.regather = null;
  }

  /**
   * Sends the request's replay to the socket from whichever node runs it, the socket having joined the
   * request's room first. False when no node runs it.
   */
  async replayTo(requestId: string, socketId: string): Promise<boolean> {
    if (await this.replayHere(requestId, socketId)) return true;
    const answers = await this.ask(REPLAY, { requestId, socketId });
    return answers.some((answer) => ReplayAnswer.safeParse(answer).data?.found === true);
  }

  /** The socket joins the request's room; entries of it reach the socket from whichever node runs it. */
  async follow(socket: Socket, requestId: string): Promise<void> {
    await socket.join(requestRoom(requestId));
  }

  async unfollow(socket: Socket, requestId: string): Promise<void> {
    await socket.leave(requestRoom(requestId));
  }

  private async replayHere(requestId: string, socketId: string): Promise<boolean> {
    const { inspection, store, logger, namespace } = this.options;
    if (!inspection.isLive(requestId)) return false;
    let stored: TimelineEntry[] = [];
    if (inspection.isRestored(requestId)) {
      try {
        stored = historyEntries(await storeRead(store.events.forRequest(requestId))).map(({ fromState: _fromState, ...entry }) => entry);
      } catch (error) {
        // The replay still has what this node saw; only the part before it came here is missing.
        logger.warn({ err: error, requestId }, 'inspector replay without the stored history: the store did not answer');
      }
      if (!inspection.isLive(requestId)) return false;
    }
    // Read in the turn it is sent: an entry added during the store read went to the room before it, and is in it too.
    const memory = inspection.timeline(requestId);
    const since = memory[0]?.at ?? Infinity;
    const entries = [...stored.filter((entry) => entry.at < since), ...memory].slice(-TIMELINE_LIMIT);
    // Through the adapter, even to a socket of this node: it then leaves in order with the room's entries.
    namespace.to(socketId).emit('inspect.replay', { requestId, entries, actors: inspection.actorsOf(requestId) });
    return true;
  }

  /** Every other node's answer; those that did not answer in the adapter's time are left out. */
  private async ask(event: string, payload: unknown): Promise<unknown[]> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new ClusterUnreachableError('the other nodes did not answer in time')), ASK_TIMEOUT_MS);
      timer.unref();
    });
    const answers = new Promise<unknown[]>((resolve, reject) => {
      // On its own timeout the adapter hands over the answers it has, with an error: those nodes answered.
      const ack = (error: Error | null, responses: unknown) =>
        Array.isArray(responses) ? resolve(responses) : reject(new ClusterUnreachableError('the other nodes could not be asked', { cause: error }));
      // Through the adapter itself, whose promise the namespace would leave unhandled: counting the nodes
      // fails when the fan-out's connection is closed under it.
      Promise.resolve(this.options.namespace.adapter.serverSideEmit([event, payload, ack])).catch((error: unknown) =>
        reject(new ClusterUnreachableError('the other nodes could not be asked', { cause: error })),
      );
    });
    try {
      return await Promise.race([answers, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Asks every node for its report; one ask at a time, and one more if asked again meanwhile. */
  private gather(): Promise<void> {
    if (this.gathering) {
      this.gatherAgain = true;
      return this.gathering;
    }
    this.gathering = (async () => {
      try {
        do {
          this.gatherAgain = false;
          const answers = await this.ask(GATHER, this.options.own()).catch((error: unknown) => {
            // What was known stays: the next gather, once the nodes can be reached, puts it right.
            this.options.logger.warn({ err: error }, 'inspector reports could not be gathered');
            return null;
          });
          if (answers) {
            const reports = answers.flatMap((answer) => {
              const parsed = NodeReport.safeParse(answer);
              return parsed.success ? [parsed.data] : [];
            });
            this.peers.replaceAll(reports);
            this.schedule();
          }
        } while (this.gatherAgain);
      } finally {
        this.gathering = null;
      }
    })();
    return this.gathering;
  }

  /** One list per burst: to this node's inspectors, and this node's report to the others while they watch. */
  private schedule(): void {
    if (this.listTimer !== null) return;
    this.listTimer = setTimeout(() => {
      this.listTimer = null;
      const { namespace } = this.options;
      if (this.ownChanged && this.now() < this.watchedUntil) namespace.serverSideEmit(REPORT, this.options.own());
      this.ownChanged = false;
      if (namespace.sockets.size > 0) namespace.local.emit('inspect.calls', this.list());
    }, this.options.coalesceMs);
    this.listTimer.unref();
  }
}
