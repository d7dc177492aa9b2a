/**
 * The limits of the socket door: how many sockets one token may hold open, how fast one socket may send
 * events, how many call requests one visitor may make, and how much one socket's refusals may write to
 * the log. The handshake limit installs itself on the server (`install`); the socket layer calls the rest.
 */
import type { ProtocolError } from '@callchart/machines';
import type { LimitSettings } from './config.ts';
import { retryAfterSeconds, type Limit, type Limits } from './limits.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import type { Io } from './socket.ts';
import { SwitchboardError } from './switchboard/entries.ts';

const MINUTE_MS = 60_000;

/** What a refused handshake's `connect_error` says. */
export const TOO_MANY_SOCKETS = 'too-many-sockets';

export interface SocketLimitsOptions {
  limits: Limits;
  logger: Logger;
  metrics?: Metrics | undefined;
  now?: () => number;
}

/**
 * One socket's token bucket. Kept in this process on purpose: a socket lives on one server, so its rate
 * never needs a shared store, and the check must not wait, or a socket's events could overtake one another.
 */
interface Bucket {
  tokens: number;
  refilledAt: number;
  /** Events refused for the rate in the current minute. */
  strikes: number;
  strikesSince: number;
}

interface LogWindow {
  startedAt: number;
  written: number;
  withheld: number;
}

/**
 * Warnings about one socket's rejected events: the first few each minute are written, the rest counted and
 * written as one summary line when the socket's next rejection comes after the minute, or when it closes.
 * A socket that sends nothing but garbage cannot fill the log.
 */
export class RejectionLog {
  private readonly windows = new Map<string, LogWindow>();

  constructor(
    private readonly logger: Logger,
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  warn(socketId: string, fields: Record<string, unknown>): void {
    const now = this.now();
    let window = this.windows.get(socketId);
    if (window !== undefined && now - window.startedAt >= MINUTE_MS) {
      this.summarise(socketId, window);
      window = undefined;
    }
    if (window === undefined) {
      window = { startedAt: now, written: 0, withheld: 0 };
      this.windows.set(socketId, window);
    }
    if (window.written < this.perMinute) {
      window.written += 1;
      this.logger.warn({ socket: socketId, ...fields }, 'rejected client event');
    } else {
      window.withheld += 1;
    }
  }

  /** The socket closed: what it had withheld is written now. */
  forget(socketId: string): void {
    const window = this.windows.get(socketId);
    if (window !== undefined) this.summarise(socketId, window);
    this.windows.delete(socketId);
  }

  private summarise(socketId: string, window: LogWindow): void {
    if (window.withheld === 0) return;
    this.logger.warn({ socket: socketId, withheld: window.withheld, sinceAt: window.startedAt }, 'rejected client events not logged');
  }
}

export class SocketLimits {
  readonly rejections: RejectionLog;
  private readonly buckets = new Map<string, Bucket>();
  private readonly settings: LimitSettings['sockets'];
  private readonly now: () => number;

  constructor(private readonly options: SocketLimitsOptions) {
    this.settings = options.limits.settings.sockets;
    this.now = options.now ?? Date.now;
    this.rejections = new RejectionLog(options.logger, this.settings.rejectionLogsPerMinute, this.now);
  }

  /**
   * Counts each socket against its token at the handshake and refuses one over the limit with
   * `too-many-sockets`. Install after the socket layer, whose middleware has read the token by then.
   */
  install(io: Io): void {
    io.use((socket, next) => {
      const { principal, session } = socket.data;
      // A visitor is one visitor whichever token they hold; an agent's login is its token's id.
      const [limit, key]: [Limit, string] =
        principal.kind === 'visitor' ? [this.options.limits.sockets.visitor, principal.visitorId] : [this.options.limits.sockets.agent, session.id];
      void (async () => {
        const verdict = await limit.take(key);
        if (!verdict.ok) {
          await limit.giveBack(key);
          this.options.metrics?.error(TOO_MANY_SOCKETS);
          this.options.logger.info(
            { code: TOO_MANY_SOCKETS, reason: TOO_MANY_SOCKETS, address: socket.data.address, origin: socket.handshake.headers.origin ?? null, kind: principal.kind, max: limit.rule.points },
            'socket refused',
          );
          next(new Error(TOO_MANY_SOCKETS));
          return;
        }
        // A client gone while the handshake was still being checked never gets a `disconnect`; its
        // connection's `close` gives the count back instead, once.
        let counted = true;
        const giveBack = () => {
          if (!counted) return;
          counted = false;
          this.forget(socket.id);
          limit.giveBack(key).catch((error: unknown) => this.options.logger.error({ err: error }, 'socket count could not be given back'));
        };
        socket.on('disconnect', giveBack);
        socket.conn.once('close', giveBack);
        next();
      })().catch((error: unknown) => {
        this.options.logger.error({ err: error }, 'socket limit could not be checked');
        next(new Error('internal'));
      });
    });
  }

  /**
   * Takes one event from the socket's bucket: null lets it through; otherwise the refusal to answer it with,
   * and nothing else may happen. A socket refused `strikesPerMinute` times within a minute is to be
   * disconnected (`disconnect`), once its refusal has been answered and logged.
   */
  event(socket: { id: string }): { refusal: ProtocolError; disconnect: boolean } | null {
    const { eventsPerSecond, eventBurst, strikesPerMinute } = this.settings;
    const now = this.now();
    const bucket = this.buckets.get(socket.id) ?? { tokens: eventBurst, refilledAt: now, strikes: 0, strikesSince: now };
    this.buckets.set(socket.id, bucket);
    bucket.tokens = Math.min(eventBurst, bucket.tokens + ((now - bucket.refilledAt) * eventsPerSecond) / 1_000);
    bucket.refilledAt = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return null;
    }
    if (now - bucket.strikesSince >= MINUTE_MS) {
      bucket.strikes = 0;
      bucket.strikesSince = now;
    }
    bucket.strikes += 1;
    const disconnect = bucket.strikes >= strikesPerMinute;
    if (disconnect) this.options.logger.warn({ socket: socket.id, strikes: bucket.strikes, eventsPerSecond }, 'socket disconnected: too many events');
    const waitMs = Math.ceil(((1 - bucket.tokens) * 1_000) / eventsPerSecond);
    return { refusal: { code: 'rate-limited', message: `Too many events: at most ${String(eventsPerSecond)} per second. Try again in ${String(waitMs)} ms.` }, disconnect };
  }

  /** Counts a visitor's call request; over the limit it is refused with `rate-limited`, saying when to try again. */
  async admitRequest(visitorId: string): Promise<void> {
    const verdict = await this.options.limits.visitorRequests.take(visitorId);
    if (verdict.ok) return;
    const seconds = retryAfterSeconds(verdict.retryAfterMs);
    throw new SwitchboardError('rate-limited', `Too many call requests: try again in ${String(seconds)} s.`);
  }

  private forget(socketId: string): void {
    this.buckets.delete(socketId);
    this.rejections.forget(socketId);
  }
}
