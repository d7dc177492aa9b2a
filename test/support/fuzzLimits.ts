/**
 * The abuse half of the fuzz suite: the server's documented default limits as environment variables, a
 * flood that fires events at one socket without waiting, and the server's log read back as parsed lines.
 */
import type { Socket } from 'socket.io-client';
import { loadConfig, type LimitSettings } from '../../server/src/config.ts';
import { sleep } from './server.ts';

/**
 * Every LIMIT_* variable at the value the server takes when it is unset, read from the configuration
 * itself, so the abuse half follows the defaults wherever they move. Each is set explicitly, because the
 * test servers relax some of them (LOOPBACK_CROWD) and the environment may carry others.
 */
export function defaultLimitEnv(): { env: Record<string, string>; limits: LimitSettings } {
  const { limits } = loadConfig({});
  const { login, visitorSessions, visitorRequests, sockets } = limits;
  const values: Record<string, number> = {
    LIMIT_LOGIN_ACCOUNT_FAILURES: login.accountFailures,
    LIMIT_LOGIN_ADDRESS_FAILURES: login.addressFailures,
    LIMIT_LOGIN_WINDOW_SECONDS: login.windowS,
    LIMIT_LOGIN_LOCK_SECONDS: login.lockS,
    LIMIT_LOGIN_LOCK_MAX_SECONDS: login.lockMaxS,
    LIMIT_VISITOR_SESSIONS: visitorSessions.points,
    LIMIT_VISITOR_SESSIONS_WINDOW_SECONDS: visitorSessions.windowS,
    LIMIT_VISITOR_REQUESTS: visitorRequests.points,
    LIMIT_VISITOR_REQUESTS_WINDOW_SECONDS: visitorRequests.windowS,
    LIMIT_RERING_WINDOW_MS: limits.reringWindowMs,
    LIMIT_SOCKETS_PER_VISITOR: sockets.perVisitor,
    LIMIT_SOCKETS_PER_AGENT_SESSION: sockets.perAgentSession,
    LIMIT_SOCKET_EVENTS_PER_SECOND: sockets.eventsPerSecond,
    LIMIT_SOCKET_EVENT_BURST: sockets.eventBurst,
    LIMIT_SOCKET_STRIKES_PER_MINUTE: sockets.strikesPerMinute,
    LIMIT_REJECTION_LOGS_PER_MINUTE: sockets.rejectionLogsPerMinute,
  };
  return { env: Object.fromEntries(Object.entries(values).map(([name, value]) => [name, String(value)])), limits };
}

/** One event of a flood, and what came of it: its reply, or null when none came before the socket closed. */
export interface FloodShot {
  name: string;
  payload: unknown;
  reply: unknown;
}

/**
 * Fires every event at once, each asking for an acknowledgement, and waits for all of them: a reply, or the
 * socket's close. The events leave in order, so the server's bucket meets them in order too.
 */
export async function flood(socket: Socket, events: { name: string; payload: unknown }[], timeoutMs = 10_000): Promise<FloodShot[]> {
  return Promise.all(
    events.map(({ name, payload }) =>
      socket
        .timeout(timeoutMs)
        .emitWithAck(name, payload)
        .then(
          (reply: unknown) => ({ name, payload, reply }),
          () => ({ name, payload, reply: null }),
        ),
    ),
  );
}

/** The error code of a `{ ok: false, error }` reply, `ok` for a success, null for anything else. */
export function replyCode(reply: unknown): string | null {
  if (typeof reply !== 'object' || reply === null || !('ok' in reply)) return null;
  if (reply.ok === true) return 'ok';
  const error = (reply as { error?: { code?: unknown } }).error;
  return typeof error?.code === 'string' ? error.code : null;
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** The JSON lines of a server's output, parsed; anything else (a stray print) is left out. */
export function logLines(output: string): LogLine[] {
  return output.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
}

/** Waits until the server has written lines that satisfy `done`, which are then returned. */
export async function untilLogged(output: () => string, done: (lines: LogLine[]) => boolean, timeoutMs = 5_000): Promise<LogLine[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = logLines(output());
    if (done(lines)) return lines;
    if (Date.now() > deadline) throw new Error(`the server did not log what was awaited within ${String(timeoutMs)} ms`);
    await sleep(50);
  }
}
