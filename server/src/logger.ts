/**
 * Structured logs (pino, one JSON object a line). Everything logged about a call goes through a child
 * that carries its `callId`, so one filter on the id gives a call's whole reconnection and reassignment
 * story.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.ts';

export type { Logger } from 'pino';

// Credentials must never reach a log, whichever object they ride in on.
const REDACTED_PATHS = [
  'password',
  'token',
  'authSecret',
  'resumeToken',
  '*.password',
  '*.token',
  '*.authSecret',
  '*.resumeToken',
  'req.headers.authorization',
  'headers.authorization',
];

/** `destination` defaults to stdout; tests pass a stream to read the lines back. */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'callchart' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** The logger for everything about one call; `bindings` may add e.g. `requestId` or `leg`. */
export function callLogger(logger: Logger, callId: string, bindings: Record<string, unknown> = {}): Logger {
  return logger.child({ ...bindings, callId });
}

/** The logger for a visitor request before (and between) its calls. */
export function requestLogger(logger: Logger, requestId: string, bindings: Record<string, unknown> = {}): Logger {
  return logger.child({ ...bindings, requestId });
}
