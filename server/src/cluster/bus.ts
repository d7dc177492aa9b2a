/**
 * Commands and queries between the nodes of a cluster, over Redis pub/sub.
 *
 * - A command about one request goes to the node that owns it (the holder of its lease) on that node's own
 *   channel, and the sender waits for the owner's answer on its own channel. The answer is the owner's:
 *   its value, or the refusal the switchboard would have thrown there (`SwitchboardError`), thrown here.
 *   While nobody owns the request (its owner died and the lease has not lapsed, or another node is taking
 *   it over) the sender tries again, backing off, for up to `forwardBudgetMs`, then refuses it as
 *   `unavailable`. A request nobody owns that is not live any more is run here, where it is not found.
 * - A fact about a person (their socket went, they came back) goes to every node on one shared channel;
 *   each applies it to the trees it runs.
 *
 * Not Socket.IO's `serverSideEmitWithAck`: it waits for an answer from every node subscribed to the
 * adapter, up to a fixed 5 s, so one node that is stalled, or cut off from Redis while Redis still counts
 * its subscription, would hold up every command in the cluster. Here only the owner is asked, `PUBLISH`
 * says at once when nobody listens on its channel (a killed node's subscription goes with its
 * connection), and an owner that does not answer within `replyTimeoutMs` is looked up again.
 *
 * A command keeps its id across retries, and a node answers an id it has already run with the same answer,
 * so a command whose answer was lost is not applied twice by its owner.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { SWITCHBOARD_ERROR_CODES, SwitchboardError, type SwitchboardErrorCode } from '../switchboard/entries.ts';
import { createSubscriber, type RedisKeys } from './redis.ts';

export type BusFailure =
  | { kind: 'refused'; code: SwitchboardErrorCode; message: string }
  /** The node does not run the request (any more, or not yet). */
  | { kind: 'not-owner' }
  | { kind: 'failed'; message: string };

export type BusReply = { ok: true; value: unknown } | { ok: false; failure: BusFailure };

const MAX_ID = 200;
const Id = z.string().min(1).max(MAX_ID);

const Reply = z.union([
  z.object({ ok: z.literal(true), value: z.unknown() }),
  z.object({
    ok: z.literal(false),
    failure: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('refused'), code: z.enum(SWITCHBOARD_ERROR_CODES as [SwitchboardErrorCode, ...SwitchboardErrorCode[]]), message: z.string().max(1_000) }),
      z.object({ kind: z.literal('not-owner') }),
      z.object({ kind: z.literal('failed'), message: z.string().max(1_000) }),
    ]),
  }),
]);

const Envelope = z.discriminatedUnion('type', [
  z.object({ type: z.literal('call'), id: Id, from: Id, requestId: Id, name: Id, args: z.array(z.unknown()).max(16) }),
  z.object({ type: z.literal('reply'), id: Id, from: Id, reply: Reply }),
  z.object({ type: z.literal('fact'), from: Id, name: Id, args: z.array(z.unknown()).max(16) }),
]);
type Envelope = z.infer<typeof Envelope>;

/** What a node does with what the others send it. */
export interface BusHandlers {
  /** Whether this node runs the request now: only then is a command about it run here. */
  runs(requestId: string): boolean;
  /** Runs a command or query about a request this node runs; throws a `SwitchboardError` to refuse it. */
  run(name: string, args: unknown[]): unknown;
  /** Applies a fact about a person to the trees this node runs. */
  apply(name: string, args: unknown[]): void;
}

/** Where a request's owner is looked up. */
export interface OwnerDirectory {
  /** The node holding the request's lease, or null when none does. */
  ownerOf(requestId: string): Promise<string | null>;
  /** Whether the request is still live somewhere in the cluster. */
  isLive(requestId: string): Promise<boolean>;
}

export interface BusOptions {
  redis: Redis;
  keys: RedisKeys;
  nodeId: string;
  owners: OwnerDirectory;
  /** How long a command looks for its request's owner before it is refused as unavailable: at least twice the lease TTL. */
  forwardBudgetMs: number;
  /** How long the owner has to answer one try. */
  replyTimeoutMs?: number;
  /** The longest pause between two tries. */
  maxBackoffMs?: number;
  onError?: (error: unknown, detail: Record<string, unknown>) => void;
}

const NOT_OWNER: Promise<BusReply> = Promise.resolve({ ok: false, failure: { kind: 'not-owner' } });
const FIRST_BACKOFF_MS = 25;
const DEFAULT_REPLY_TIMEOUT_MS = 1_500;
/** How long a node remembers the answer to a command id, for a sender that asks again. */
const ANSWERED_KEPT_MS = 60_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const unavailable = () =>
  new SwitchboardError('unavailable', 'The server running this call cannot be reached right now; nothing was done. Please try again.');

export class ClusterBus {
  readonly nodeId: string;
  private readonly redis: Redis;
  private subscriber: Redis | null = null;
  private handlers: BusHandlers | null = null;
  private readonly waiting = new Map<string, (reply: BusReply) => void>();
  private readonly answered = new Map<string, { reply: Promise<BusReply>; at: number }>();
  private readonly ownChannel: string;
  private readonly factChannel: string;
  private sweep: NodeJS.Timeout | null = null;

  constructor(private readonly options: BusOptions) {
    this.nodeId = options.nodeId;
    this.redis = options.redis;
    this.ownChannel = options.keys.key('bus', options.nodeId);
    this.factChannel = options.keys.key('bus-facts');
  }

  /** Starts hearing commands and facts; resolves once subscribed (rejects after `timeoutMs`, while it goes on trying). */
  async start(handlers: BusHandlers, { timeoutMs = 5_000 }: { timeoutMs?: number } = {}): Promise<void> {
    if (this.subscriber) return;
    this.handlers = handlers;
    const subscriber = createSubscriber(this.redis, (error) => this.report(error, { what: 'bus subscriber' }));
    this.subscriber = subscriber;
    subscriber.on('message', (channel: string, message: string) => this.receive(channel, message));
    this.sweep = setInterval(() => this.forget(), ANSWERED_KEPT_MS / 2);
    this.sweep.unref();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`could not subscribe to the cluster bus within ${String(timeoutMs)} ms`)), timeoutMs);
    });
    const subscribed = subscriber.subscribe(this.ownChannel, this.factChannel);
    subscribed.catch((error: unknown) => this.report(error, { what: 'bus subscribe' }));
    try {
      await Promise.race([subscribed, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops hearing anything; commands still waiting for an answer get none, and are looked up again. */
  stop(): void {
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = null;
    this.subscriber?.disconnect();
    this.subscriber = null;
    this.handlers = null;
    for (const resolve of this.waiting.values()) resolve({ ok: false, failure: { kind: 'not-owner' } });
    this.waiting.clear();
  }

  /** Tells every other node a fact about a person; the caller applies it here itself. */
  async tell(name: string, args: unknown[]): Promise<void> {
    const envelope: Envelope = { type: 'fact', from: this.nodeId, name, args };
    await this.redis.publish(this.factChannel, JSON.stringify(envelope));
  }

  /**
   * Runs the command at the request's owner and answers what it answered there. `runHere` runs it on this
   * node: when this node runs the request, and when no node does because it is not live any more.
   */
  async forward<T>(requestId: string, name: string, args: unknown[], runHere: () => T): Promise<T> {
    const id = randomUUID();
    const deadline = Date.now() + this.options.forwardBudgetMs;
    let backoff = FIRST_BACKOFF_MS;
    for (;;) {
      if (this.handlers?.runs(requestId)) return runHere();
      const owner = await this.options.owners.ownerOf(requestId).catch(() => undefined);
      if (owner === null && !(await this.options.owners.isLive(requestId).catch(() => true))) return runHere();
      if (typeof owner === 'string' && owner !== this.nodeId) {
        const reply = await this.ask(owner, { type: 'call', id, from: this.nodeId, requestId, name, args });
        if (reply.ok) return reply.value as T;
        if (reply.failure.kind === 'refused') throw new SwitchboardError(reply.failure.code, reply.failure.message);
        if (reply.failure.kind === 'failed') throw new Error(`the owner of ${requestId} failed to run ${name}: ${reply.failure.message}`);
      }
      // Nobody answers for the request yet (or this node holds its lease and is still taking it over).
      if (Date.now() + backoff > deadline) throw unavailable();
      await sleep(backoff);
      backoff = Math.min(backoff * 2, this.options.maxBackoffMs ?? 400);
    }
  }

  /** One try at a node: its answer, or `not-owner` when nobody listens there or it does not answer in time. */
  private async ask(nodeId: string, envelope: Extract<Envelope, { type: 'call' }>): Promise<BusReply> {
    const nobody: BusReply = { ok: false, failure: { kind: 'not-owner' } };
    if (!this.subscriber) return nobody;
    const answer = new Promise<BusReply>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(envelope.id);
        resolve(nobody);
      }, this.options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS);
      this.waiting.set(envelope.id, (reply) => {
        clearTimeout(timer);
        this.waiting.delete(envelope.id);
        resolve(reply);
      });
    });
    try {
      const listeners = await this.redis.publish(this.options.keys.key('bus', nodeId), JSON.stringify(envelope));
      if (listeners === 0) this.waiting.get(envelope.id)?.(nobody);
    } catch (error) {
      this.report(error, { what: 'bus publish', to: nodeId });
      this.waiting.get(envelope.id)?.(nobody);
    }
    return answer;
  }

  private receive(channel: string, raw: string): void {
    let envelope: Envelope;
    try {
      envelope = Envelope.parse(JSON.parse(raw));
    } catch (error) {
      this.report(error, { what: 'bus message refused', channel });
      return;
    }
    if (envelope.from === this.nodeId && envelope.type === 'fact') return;
    if (envelope.type === 'reply') this.waiting.get(envelope.id)?.(envelope.reply);
    else if (envelope.type === 'fact') this.applyFact(envelope.name, envelope.args);
    else void this.answer(envelope);
  }

  private applyFact(name: string, args: unknown[]): void {
    try {
      this.handlers?.apply(name, args);
    } catch (error) {
      this.report(error, { what: 'bus fact failed', name });
    }
  }

  private async answer(envelope: Extract<Envelope, { type: 'call' }>): Promise<void> {
    let reply = this.answered.get(envelope.id)?.reply;
    if (!reply) {
      reply = this.run(envelope);
      // Only what was run is remembered: asked again once this node runs the request, it runs it.
      if (reply !== NOT_OWNER) this.answered.set(envelope.id, { reply, at: Date.now() });
    }
    const out: Envelope = { type: 'reply', id: envelope.id, from: this.nodeId, reply: await reply };
    try {
      await this.redis.publish(this.options.keys.key('bus', envelope.from), JSON.stringify(out));
    } catch (error) {
      // The sender asks again, with the same id, and gets this answer.
      this.report(error, { what: 'bus reply', to: envelope.from });
    }
  }

  private run(envelope: Extract<Envelope, { type: 'call' }>): Promise<BusReply> {
    const handlers = this.handlers;
    if (!handlers?.runs(envelope.requestId)) return NOT_OWNER;
    const refusal = (error: unknown): BusReply => {
      if (error instanceof SwitchboardError) return { ok: false, failure: { kind: 'refused', code: error.code, message: error.message } };
      this.report(error, { what: 'bus command failed', name: envelope.name, requestId: envelope.requestId });
      return { ok: false, failure: { kind: 'failed', message: error instanceof Error ? error.message : String(error) } };
    };
    try {
      return Promise.resolve(handlers.run(envelope.name, envelope.args)).then((value): BusReply => ({ ok: true, value: value ?? null }), refusal);
    } catch (error) {
      return Promise.resolve(refusal(error));
    }
  }

  private forget(): void {
    const before = Date.now() - ANSWERED_KEPT_MS;
    for (const [id, { at }] of this.answered) if (at < before) this.answered.delete(id);
  }

  private report(error: unknown, detail: Record<string, unknown>): void {
    this.options.onError?.(error, detail);
  }
}
