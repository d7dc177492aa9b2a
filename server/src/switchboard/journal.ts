/**
 * A request tree's journal: the writes its steps made and the messages they send, held until the store has
 * them. Persist, then emit: at each settled snapshot the tree seals its step, the journal commits the step's
 * writes with the tree's snapshot (whose `outbox` is what the step sends), and only once that commit has
 * landed are the messages sent. Commits go one after another per tree, so its steps land, and its messages
 * go out, in the order they were taken; steps sealed while a commit is in flight land together in the next.
 */
import { randomUUID } from 'node:crypto';
import { SERVER_EVENT_NAMES, type ServerEventName, type ServerPayload } from '@callchart/machines';
import { z } from 'zod';
import type { Logger } from '../logger.ts';
import { StaleFenceError, type ActorSnapshotRecord, type Fence, type Store, type StoreWrites } from '../store.ts';

/** A write as a step records it, replayed into the commit that carries the step. */
export type Write = (writes: StoreWrites) => void;

/** A ring that may only go out once its agent is held for its request (a cluster's shared presence). */
export interface RingClaim {
  agentId: string;
  requestId: string;
}

/**
 * One thing a step sends, as the outbox keeps it: each has the id a client drops a second copy by, and the
 * number of the tree's step that sent it (a refused ring takes the rest of its step's messages with it).
 */
export type OutboxMessage = (
  | { eid: string; kind: 'emit'; room: string; event: ServerEventName; payload: { eid: string }; claim?: RingClaim }
  | { eid: string; kind: 'joinCall'; callId: string; agentId: string; visitorId: string; requestId?: string }
  | { eid: string; kind: 'leaveCall'; callId: string }
) & { step?: number };
export type EmitMessage = Extract<OutboxMessage, { kind: 'emit' }>;

const Text = z.string().min(1).max(1_000);
/** An outbox entry as the store hands it back, for a node that sends it again. */
const Step = z.optional(z.number().int().nonnegative());
export const StoredOutboxMessage = z.discriminatedUnion('kind', [
  z.object({
    eid: Text,
    step: Step,
    kind: z.literal('emit'),
    room: Text,
    event: z.enum(SERVER_EVENT_NAMES as [ServerEventName, ...ServerEventName[]]),
    payload: z.looseObject({ eid: Text }),
    claim: z.optional(z.object({ agentId: Text, requestId: Text })),
  }),
  z.object({ eid: Text, step: Step, kind: z.literal('joinCall'), callId: Text, agentId: Text, visitorId: Text, requestId: z.optional(Text) }),
  z.object({ eid: Text, step: Step, kind: z.literal('leaveCall'), callId: Text }),
]);

/** What the tree's snapshot row becomes with a commit: saved as it stands now, or gone with the finished tree. */
export type SnapshotWrite = { save: Omit<ActorSnapshotRecord, 'outbox'> } | { delete: string };

/**
 * Whoever sends what a committed step sends (the Socket.IO rooms). A delivery that answers a promise is
 * waited for before the next message of the tree goes: a call's room is joined before anyone is told of it.
 */
export interface Courier {
  deliver(message: OutboxMessage): void | Promise<void>;
}

/** How a ring's claim is settled before the ring goes: true when the agent is held for the request now. */
export type ClaimRing = (agentId: string, requestId: string) => Promise<boolean>;

// A store that fails is retried until it answers: a Postgres restart takes seconds.
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 5_000;

/** The journals of one switchboard: their store, their courier, and whether the process is shutting down. */
export class Journals {
  private readonly busy = new Set<Journal>();
  private stopping = false;
  private readonly wakers = new Set<() => void>();

  constructor(
    readonly store: Store,
    readonly courier: Courier,
    readonly logger: Logger,
    /** Without it (one process) every ring goes out as it is. */
    readonly claimRing: ClaimRing | null = null,
  ) {}

  /** A journal for one tree (or for writes of no tree, without `snapshot`). */
  open(options: JournalOptions = {}): Journal {
    return new Journal(this, options);
  }

  /** Resolves once every journal has committed and sent all it was given. */
  async settled(): Promise<void> {
    while (this.busy.size > 0) await Promise.all([...this.busy].map((journal) => journal.settled()));
  }

  /** Resolves once what every journal has sealed so far is committed and sent; later steps are not waited for. */
  async sent(): Promise<void> {
    await Promise.all([...this.busy].map((journal) => new Promise<void>((resolve) => journal.afterDelivery(resolve))));
  }

  /** From now on a failed commit is not retried: the process is going, and the next start restores from the store. */
  stop(): void {
    this.stopping = true;
    for (const wake of this.wakers) wake();
  }

  /** @internal */
  track(journal: Journal, busy: boolean): void {
    if (busy) this.busy.add(journal);
    else this.busy.delete(journal);
  }

  /**
   * Commits, retrying an ordinary failure with a growing pause until the store takes it (or the process
   * stops). Answers whether it landed; a stale fence is thrown: nothing of the tree may be written again.
   */
  async commit(fill: Write, what: Record<string, unknown>, fence?: Fence): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.store.commit(fill, fence);
        if (attempt > 0) this.logger.info({ ...what, attempts: attempt + 1 }, 'store commit landed after retries');
        return true;
      } catch (error) {
        if (error instanceof StaleFenceError) throw error;
        if (this.stopping) {
          this.logger.error({ err: error, ...what }, 'store commit failed while shutting down; the step was not persisted');
          return false;
        }
        const retryInMs = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(attempt, 16));
        this.logger.warn({ err: error, ...what, attempt: attempt + 1, retryInMs }, 'store commit failed; retrying');
        await this.pause(retryInMs);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }
}

export interface JournalOptions {
  /** What the tree's snapshot row is to be now (null: left as it is); without it the journal carries writes only. */
  snapshot?: () => SnapshotWrite | null;
  /** Names the journal's commits in the log. */
  what?: Record<string, unknown>;
  /** The tree's ownership: every commit carries it, and the store refuses it once a newer owner has written. */
  fence?: Fence;
  /** The store refused the tree's writes for good: another owner has it. */
  onStale?: (error: StaleFenceError) => void;
  /** A ring was not sent because its agent is held for another request; the tree is told so. */
  onRingRefused?: (agentId: string) => void;
}

export class Journal {
  private writes: Write[] = [];
  private messages: OutboxMessage[] = [];
  private snapshotDue = false;
  /** The snapshot taken when the tree was stopped with a step not yet committed: a stopped actor's own is no use. */
  private frozen: SnapshotWrite | null = null;
  /** The tree as it stood when it was stopped, committed or not: what its row is saved as once it is all sent. */
  private stoppedAs: SnapshotWrite | null = null;
  /** The tree's row in the store holds messages a next owner would send again (none of this journal's, or all sent). */
  private outboxKept = false;
  /** A commit gave up (the process stopping): the tree as it stands has a step the store does not have. */
  private unlanded = false;
  /** A commit is waiting to start: whatever is sealed before it starts goes with it. */
  private queued = false;
  private stale = false;
  /** The step the messages recorded now belong to; each seal starts the next. */
  private step = 0;
  private tail: Promise<void> = Promise.resolve();
  /** Links of the chain not yet run to their end. */
  private links = 0;

  constructor(
    private readonly journals: Journals,
    private readonly options: JournalOptions,
  ) {}

  write(fill: Write): void {
    this.writes.push(fill);
  }

  /**
   * Records an emit; the payload sent carries the message's id. With `claim`, the message is a ring that
   * goes out only if its agent can be held for its request when it is sent (see `ClaimRing`).
   */
  emit<E extends ServerEventName>(room: string, event: E, payload: ServerPayload<E>, options: { claim?: RingClaim } = {}): EmitMessage {
    const eid = randomUUID();
    const message: EmitMessage = { eid, step: this.step, kind: 'emit', room, event, payload: { ...payload, eid }, ...(options.claim ? { claim: options.claim } : {}) };
    this.messages.push(message);
    return message;
  }

  joinCall(callId: string, agentId: string, visitorId: string): void {
    const requestId = this.options.fence?.requestId;
    this.messages.push({ eid: randomUUID(), step: this.step, kind: 'joinCall', callId, agentId, visitorId, ...(requestId === undefined ? {} : { requestId }) });
  }

  leaveCall(callId: string): void {
    this.messages.push({ eid: randomUUID(), step: this.step, kind: 'leaveCall', callId });
  }

  /**
   * The step is over: what it wrote and sends is committed (with the tree's snapshot when `snapshotChanged`)
   * and then sent. The commit starts once the code that took the step has run to its end, so every step
   * taken meanwhile (a child's and its parent's, one event after another) shares it.
   */
  seal(snapshotChanged = true): void {
    this.step++;
    if (this.stale) return;
    if (snapshotChanged && this.options.snapshot) this.snapshotDue = true;
    if (this.queued || (!this.snapshotDue && this.writes.length === 0 && this.messages.length === 0)) return;
    this.queued = true;
    this.chain(() => this.commitSealed());
  }

  /** The tree is about to be stopped: a step still to be committed keeps the snapshot the tree has now. */
  freeze(): void {
    this.stoppedAs = this.options.snapshot?.() ?? null;
    if (this.snapshotDue) this.frozen = this.stoppedAs;
  }

  /**
   * The tree was stopped (`freeze`) to be handed to another owner, and everything sealed so far is
   * committed and sent: its row is saved again with an empty outbox, under the same fence, so the next
   * owner sends nothing again that this one delivered. Persist, then emit, then record it sent; an owner
   * that dies before the last step leaves the outbox, and the next one sends it again (ids and all).
   * Resolves once that is done, or could not be (logged: the next owner then sends it again, harmlessly).
   */
  markSent(): Promise<void> {
    return new Promise((resolve) => {
      this.chain(async () => {
        try {
          const row = this.stoppedAs;
          // A row saved from a tree whose last step never landed would keep that step without its writes.
          if (this.stale || this.unlanded || !this.outboxKept || !row || !('save' in row)) return;
          await this.journals.store.commit((writes) => writes.snapshots.save({ ...row.save, outbox: [] }), this.options.fence);
          this.outboxKept = false;
        } catch (error) {
          if (error instanceof StaleFenceError) this.stale = true;
          else this.journals.logger.warn({ err: error, ...this.options.what }, 'could not record a handed-off tree\'s messages as sent; its next owner sends them again');
        } finally {
          resolve();
        }
      });
    });
  }

  /** Runs `then` once everything sealed so far has been committed and sent. */
  afterDelivery(then: () => void): void {
    this.chain(then);
  }

  /**
   * Sends again what the tree's last committed step sent, before anything the tree does from here: a node
   * taking the tree over cannot know which of them went out. Each keeps its id, so a client drops a copy.
   */
  resend(messages: readonly OutboxMessage[]): void {
    if (messages.length === 0) return;
    this.outboxKept = true;
    this.chain(() => this.deliverAll(messages));
  }

  /**
   * The tree is no longer this process's to run (its lease was lost): nothing more of it is committed, and
   * nothing a commit still out would send is sent.
   */
  revoke(): void {
    this.stale = true;
    this.writes = [];
    this.messages = [];
  }

  /** Resolves once everything sealed so far, and anything sealed while waiting, is committed and sent. */
  async settled(): Promise<void> {
    for (let tail = this.tail; ; tail = this.tail) {
      await tail;
      if (tail === this.tail && !this.queued) return;
    }
  }

  private chain(link: () => Promise<void> | void): void {
    this.links++;
    this.journals.track(this, true);
    this.tail = this.tail
      .then(link)
      .catch((error: unknown) => this.journals.logger.error({ err: error, ...this.options.what }, 'journal step failed'))
      .finally(() => {
        this.links--;
        if (this.links === 0) this.journals.track(this, false);
      });
  }

  private async commitSealed(): Promise<void> {
    this.queued = false;
    const writes = this.writes;
    const messages = this.messages;
    this.writes = [];
    this.messages = [];
    const snapshot = this.snapshotDue ? (this.frozen ?? this.options.snapshot?.() ?? null) : null;
    this.snapshotDue = false;
    this.frozen = null;
    const outbox = messages;
    const fill: Write = (w) => {
      for (const write of writes) write(w);
      if (snapshot && 'save' in snapshot) w.snapshots.save({ ...snapshot.save, outbox });
      else if (snapshot) w.snapshots.delete(snapshot.delete);
    };
    try {
      const landed = await this.journals.commit(fill, this.options.what ?? {}, this.options.fence);
      if (!landed) this.unlanded = true;
      else if (snapshot) this.outboxKept = 'save' in snapshot && outbox.length > 0;
      // Revoked while the commit was out: whoever runs the tree now sends what that commit left in the outbox.
      if (landed && !this.stale) await this.deliverAll(messages);
    } catch (error) {
      if (!(error instanceof StaleFenceError)) throw error;
      this.stale = true;
      this.writes = [];
      this.messages = [];
      this.journals.logger.error({ err: error, ...this.options.what }, 'store refused the tree as stale; it stops here');
      this.options.onStale?.(error);
    }
  }

  private async deliverAll(messages: readonly OutboxMessage[]): Promise<void> {
    // What the step of a refused ring goes on to say (the visitor told who is rung) is about a ring that never was.
    let refusedStep: number | null = null;
    for (const message of messages) {
      if (this.stale) return;
      if (refusedStep !== null && message.step === refusedStep) continue;
      if (message.kind === 'emit' && message.claim && !(await this.claimed(message.claim))) {
        refusedStep = message.step ?? null;
        this.options.onRingRefused?.(message.claim.agentId);
        continue;
      }
      // Sent in the same turn as the one before unless the courier waits on something (one process never does).
      const sending = this.deliver(message);
      if (sending) await sending;
    }
  }

  /** Whether the ring may go: its agent is held for its request, or there are no shared claims to ask. */
  private async claimed(claim: RingClaim): Promise<boolean> {
    const claimRing = this.journals.claimRing;
    if (!claimRing) return true;
    try {
      return await claimRing(claim.agentId, claim.requestId);
    } catch (error) {
      // Unknown is not held: ringing an agent another request may hold would ring them twice.
      this.journals.logger.warn({ err: error, ...claim }, 'could not claim the agent for a ring; it is not sent');
      return false;
    }
  }

  private deliver(message: OutboxMessage): Promise<void> | undefined {
    const failed = (error: unknown) => this.journals.logger.error({ err: error, eid: message.eid, kind: message.kind }, 'a committed message could not be sent');
    try {
      return this.journals.courier.deliver(message)?.catch(failed);
    } catch (error) {
      failed(error);
      return undefined;
    }
  }
}
