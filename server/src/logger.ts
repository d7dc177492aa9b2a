/**
 * Structured logs (pino, one JSON object a line). Everything logged about a call goes through a child
 * that carries its `callId`, so one filter on the id gives a call's whole reconnection and reassignment
 * story.
 *
 * No line names a key twice. Pino writes a child's bindings and then the logged object as they come, so a
 * request's logger logging `{ requestId }`, or a child binding a key its parent bound, wrote it twice; a
 * reader's JSON parser then silently keeps one of them. Here a logger's own bindings win: a key of the logged
 * object that the logger already binds (or that pino writes itself) is left out, and a child's binding
 * replaces its parent's.
 */
import { pino, symbols, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
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

// Written by pino on every line, whatever the object says.
const LINE_KEYS = ['level', 'time'];
const MESSAGE_KEY = 'msg';

// The keys each logger writes before the logged object; a logger's bindings never change once made.
const boundKeys = new WeakMap<Logger, ReadonlySet<string>>();

function keysBoundBy(logger: Logger): ReadonlySet<string> {
  let keys = boundKeys.get(logger);
  if (keys === undefined) {
    keys = new Set([...LINE_KEYS, ...Object.keys(logger.bindings())]);
    boundKeys.set(logger, keys);
  }
  return keys;
}

/** The logged object without the keys the line already has; a message given as well replaces its `msg`. */
function dropBoundKeys(this: Logger, args: Parameters<Logger['info']>, method: (...args: Parameters<Logger['info']>) => void): void {
  const [first, ...rest] = args;
  if (typeof first === 'object' && first !== null && !(first instanceof Error)) {
    const bound = keysBoundBy(this);
    const withMessage = typeof rest[0] === 'string';
    const kept = Object.entries(first).filter(([key]) => !bound.has(key) && !(withMessage && key === MESSAGE_KEY));
    if (kept.length !== Object.keys(first).length) {
      method.apply(this, [Object.fromEntries(kept), ...rest]);
      return;
    }
  }
  method.apply(this, args);
}

/**
 * A child's bindings are written after its parent's, so binding a key again repeats it; pino offers no way
 * to replace one, so the child's serialized bindings (pino's exported `chindings` symbol) are rewritten once,
 * each key with its latest value.
 */
function replaceRepeatedBindings(child: Logger): void {
  const written: unknown = Reflect.get(child, symbols.chindingsSym);
  if (typeof written !== 'string' || written === '') return;
  const bindings = JSON.parse(`{${written.slice(1)}}`) as Record<string, unknown>;
  Reflect.set(child, symbols.chindingsSym, Object.entries(bindings).map(([key, value]) => `,${JSON.stringify(key)}:${JSON.stringify(value)}`).join(''));
}

/** `destination` defaults to stdout; tests pass a stream to read the lines back. */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'callchart' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    hooks: { logMethod: dropBoundKeys },
    onChild: replaceRepeatedBindings,
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
