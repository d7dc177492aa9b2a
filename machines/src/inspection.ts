/**
 * What may leave a machine for the live inspector: a JSON copy of an event, state value or context with
 * secrets and session descriptions redacted and sizes capped. Clients run it before they report their
 * own machines and the server runs it again on everything it keeps, so neither trusts the other.
 */
const MAX_STRING = 200;
const MAX_ITEMS = 50;
const MAX_DEPTH = 8;
// Keys whose values are secrets or bulky session descriptions; matched case-insensitively at any depth.
const REDACTED_KEYS = new Set([
  'sdp',
  'token',
  'resumetoken',
  'accesstoken',
  'access_token',
  'refreshtoken',
  'refresh_token',
  'jwt',
  'password',
  'candidate',
  'credential',
  'secret',
  'authsecret',
  'apikey',
  'api_key',
  'authorization',
  'cookie',
  'set-cookie',
]);
export const REDACTED = '[redacted]';
// A JWT wherever it sits, whatever key it rides under: a base64url JSON header (`{"` is `eyJ`), a payload and
// a signature, which an unsigned token leaves empty.
const JWT_SHAPE = /eyJ[\w-]*\.[\w-]+\.[\w-]*/g;

/** `text` with every JWT-shaped part replaced, before any cut: half a token would no longer look like one. */
function redactTokens(text: string): string {
  return text.includes('eyJ') ? text.replace(JWT_SHAPE, REDACTED) : text;
}

const capped = (text: string): string => (text.length > MAX_STRING ? `${text.slice(0, MAX_STRING)}…` : text);

/** A JSON copy that is safe and small enough to show: secrets redacted, strings, arrays and depth capped. */
export function sanitize(value: unknown, depth = 0): unknown {
  return sanitizeNode(value, depth, sanitize);
}

/**
 * `sanitize` for a long-lived observer of one process's own actors. XState's snapshots share every part of
 * their context an event did not change, and so do the copies this makes: a part already copied is reused
 * rather than copied again, so a timeline of snapshots costs what changed between them, not their whole size
 * each time. Only for values nobody mutates afterwards, which snapshots are.
 */
export function createSharingSanitizer(): (value: unknown) => unknown {
  const copies = new WeakMap<object, { depth: number; clean: unknown }>();
  const shared = (value: unknown, depth: number): unknown => {
    if (value === null || typeof value !== 'object') return sanitizeNode(value, depth, shared);
    const known = copies.get(value);
    if (known && known.depth === depth) return known.clean;
    const clean = sanitizeNode(value, depth, shared);
    copies.set(value, { depth, clean });
    return clean;
  };
  return (value) => shared(value, 0);
}

function sanitizeNode(value: unknown, depth: number, recurse: (value: unknown, depth: number) => unknown): unknown {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'string') return capped(redactTokens(value));
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object') return undefined;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((item) => recurse(item, depth + 1) ?? null);
    if (value.length > MAX_ITEMS) items.push(`[+${value.length - MAX_ITEMS} more]`);
    return items;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  const out: Record<string, unknown> = {};
  for (const [key, item] of entries.slice(0, MAX_ITEMS)) {
    const clean = REDACTED_KEYS.has(key.toLowerCase()) && item !== null && item !== undefined ? REDACTED : recurse(item, depth + 1);
    if (clean !== undefined) {
      const name = redactTokens(key);
      out[name.length > MAX_STRING ? name.slice(0, MAX_STRING) : name] = clean;
    }
  }
  if (entries.length > MAX_ITEMS) out['[more]'] = entries.length - MAX_ITEMS;
  return out;
}

export function sanitizeEvent(event: { type: string }, sanitizeValue: (value: unknown) => unknown = sanitize): { type: string } & Record<string, unknown> {
  const clean = sanitizeValue(event) as Record<string, unknown>;
  return { ...clean, type: String(clean.type ?? event.type) };
}

