/**
 * The fuzz suite's sockets: fuzzers that send generated events and tally every answer, and the clean call's
 * recorder, which notes every message its two sockets receive so the suite can find any that is not theirs.
 */
import { readFileSync } from 'node:fs';
import { io, type Socket } from 'socket.io-client';
import { PROTOCOL_ERROR_CODES, ProtocolError, SERVER_EVENT_NAMES } from '@callchart/machines';
import { fuzzEvent, type IdPool, type Rng } from './fuzzPayloads.ts';

const ACK_TIMEOUT_MS = 15_000;

/** What the fuzzers heard back, over all of them. */
export class FuzzTally {
  sent = 0;
  readonly byKind = { valid: 0, mutated: 0, 'random-name': 0 };
  acked = 0;
  ok = 0;
  readonly codes = new Map<string, number>();
  /** Replies that are neither `{ ok: true, … }` nor `{ ok: false, error: ProtocolError }`. */
  readonly malformed: { event: string; reply: unknown }[] = [];
  /** Acked events that got no answer while their socket stayed connected. */
  unanswered = 0;
  /** Error replies and pushed `error` events with a code the protocol does not document, or `internal`. */
  readonly undocumented: { event: string; error: unknown }[] = [];
  readonly disconnects: string[] = [];
  /** What the server pushed to the fuzzers, by event: calls they made among themselves show here. */
  readonly pushed = new Map<string, number>();

  /** How the fuzzing agents' accepts of their rings were answered (`ok` or a code). */
  readonly accepts = new Map<string, number>();
  /** Codes of the `error` events pushed for events sent without an ack. */
  readonly pushedCodes = new Map<string, number>();

  /** One error, replied or pushed: it must be a documented code, and never `internal`. */
  error(event: string, error: unknown, codes = this.codes): void {
    const parsed = ProtocolError.safeParse(error);
    const code = parsed.success ? parsed.data.code : '(malformed)';
    codes.set(code, (codes.get(code) ?? 0) + 1);
    if (!parsed.success || code === 'internal' || !PROTOCOL_ERROR_CODES.includes(parsed.data.code)) this.undocumented.push({ event, error });
  }

  reply(event: string, reply: unknown): void {
    this.acked++;
    if (typeof reply !== 'object' || reply === null || !('ok' in reply)) {
      this.malformed.push({ event, reply });
      return;
    }
    if (reply.ok === true) {
      this.ok++;
      return;
    }
    if (reply.ok === false && 'error' in reply) return this.error(event, reply.error);
    this.malformed.push({ event, reply });
  }

  summary(): string {
    const list = (counts: Map<string, number>) => [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([key, n]) => `${key} ${n}`).join(', ');
    const reasons = [...new Set(this.disconnects)].map((reason) => `${reason} ${this.disconnects.filter((r) => r === reason).length}`);
    return [
      `sent ${this.sent} (valid ${this.byKind.valid}, mutated ${this.byKind.mutated}, random names ${this.byKind['random-name']})`,
      `acked ${this.acked}: ok ${this.ok}, ${list(this.codes)}; unanswered ${this.unanswered}`,
      `errors pushed for unacked events: ${list(this.pushedCodes)}`,
      `pushed to fuzzers: ${list(this.pushed)}`,
      `rings accepted by fuzzing agents: ${list(this.accepts) || 'none'}`,
      `disconnects: ${reasons.join(', ') || 'none'}`,
    ].join('\n  ');
  }
}

export interface FuzzerOptions {
  url: string;
  token: string;
  rng: Rng;
  ids: IdPool;
  tally: FuzzTally;
  /** Acked events in flight at once: the socket's pace. */
  window: number;
  /**
   * An agent that accepts every ring at once, as a real one would, so fuzzers end up in calls with each other
   * and fuzzed signals reach live calls. A policy rather than a draw: the seed's sequence stays its own.
   */
  acceptsRings?: boolean;
}

/** One fuzzing socket; it reconnects on the same token if the server closes it. */
export class Fuzzer {
  private socket: Socket;

  constructor(private readonly options: FuzzerOptions) {
    this.socket = this.open();
  }

  private open(): Socket {
    const { url, token, ids, tally } = this.options;
    const socket = io(url, { auth: { token }, reconnection: false, transports: ['websocket'], forceNew: true });
    socket.onAny((event: string, payload: unknown, ...rest: unknown[]) => {
      // Like a real client: a relayed restart asks for a receipt, and a socket that gives none is closed as dead.
      const ack = rest.findLast((arg) => typeof arg === 'function') as ((reply: unknown) => void) | undefined;
      ack?.({ ok: true });
      tally.pushed.set(event, (tally.pushed.get(event) ?? 0) + 1);
      if (event === 'error') return tally.error('(pushed)', payload, tally.pushedCodes);
      const fields = payload as { requestId?: unknown; callId?: unknown; resumeToken?: unknown } | null;
      if (typeof fields?.requestId === 'string') ids.add('requests', fields.requestId);
      if (event === 'agent.ring' && this.options.acceptsRings && typeof fields?.requestId === 'string') {
        socket.timeout(ACK_TIMEOUT_MS).emit('agent.accept', { requestId: fields.requestId }, (error: Error | null, reply: unknown) => {
          if (error) return;
          const answer = reply as { ok?: unknown; error?: unknown };
          if (answer.ok === true) tally.accepts.set('ok', (tally.accepts.get('ok') ?? 0) + 1);
          else tally.error('agent.accept', answer.error, tally.accepts);
        });
      }
      if (typeof fields?.callId === 'string') ids.add('calls', fields.callId);
      if (event === 'session.ready' && typeof fields?.resumeToken === 'string') ids.add('resumeTokens', fields.resumeToken);
    });
    socket.on('disconnect', (reason) => {
      if (reason !== 'io client disconnect') tally.disconnects.push(reason);
    });
    return socket;
  }

  async ready(): Promise<void> {
    if (this.socket.connected) return;
    await new Promise<void>((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', reject);
    });
  }

  /** Sends `count` events, at most `window` acked ones unanswered at a time. */
  async run(count: number): Promise<void> {
    const { rng, ids, tally, window } = this.options;
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < count; i++) {
      if (!this.socket.connected) {
        this.socket = this.open();
        await this.ready();
      }
      const event = fuzzEvent(rng, ids);
      tally.sent++;
      tally.byKind[event.kind]++;
      if (!event.ack) {
        (this.socket.emit as (name: string, ...args: unknown[]) => unknown)(event.name, ...event.args);
        // Let the socket write, so events without acks cannot pile up unbounded.
        if (i % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      const socket = this.socket;
      const sent = (socket.timeout(ACK_TIMEOUT_MS).emitWithAck as (name: string, ...args: unknown[]) => Promise<unknown>)(event.name, ...event.args).then(
        (reply) => tally.reply(event.name, reply),
        () => {
          if (socket.connected) tally.unanswered++;
        },
      );
      const tracked = sent.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      if (inFlight.size >= window) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  }

  close(): void {
    this.socket.disconnect();
  }
}

/** Every message a socket receives, in order, whatever its name. */
export function recordAll(socket: Socket): { event: string; payload: unknown }[] {
  const seen: { event: string; payload: unknown }[] = [];
  socket.onAny((event: string, payload: unknown) => seen.push({ event, payload }));
  return seen;
}

/** Messages that do not belong to the clean call: another request's or call's, an error, or no protocol event at all. */
export function foreignMessages(seen: { event: string; payload: unknown }[], own: { requests: Set<string>; calls: Set<string> }) {
  const known = new Set<string>(SERVER_EVENT_NAMES);
  return seen.filter(({ event, payload }) => {
    if (event === 'session.ready') return false;
    if (!known.has(event) || event === 'error' || event.startsWith('session.')) return true;
    const { requestId, callId } = (payload ?? {}) as { requestId?: unknown; callId?: unknown };
    if (requestId === undefined && callId === undefined) return true;
    if (requestId !== undefined && !own.requests.has(requestId as string)) return true;
    return callId !== undefined && !own.calls.has(callId as string);
  });
}

/** The resident set of a process, from /proc (Linux), in bytes. */
export function residentBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  if (!line) throw new Error(`no VmRSS for process ${pid}`);
  return Number(/(\d+)/.exec(line)![1]) * 1024;
}
