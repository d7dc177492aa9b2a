/**
 * Which web pages may host the widget. The visitor's endpoints (the session API and the visitor's socket)
 * answer a browser's request only from an allowed origin; everything else stays same-origin. A request
 * without an `Origin` header is not a browser's cross-origin request and is let through: origins only
 * bind browsers, and anything else could send whatever header it likes.
 */
export type AllowedOrigins =
  /** The default: the server's own origin, and loopback origins on any port (local development, the demo). */
  | { kind: 'loopback' }
  /** `ALLOWED_ORIGINS=*`, only when set explicitly. */
  | { kind: 'any' }
  | { kind: 'list'; origins: string[] };

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** `scheme://host[:port]`, lower case, as browsers send it; null for anything that is not an http(s) origin. */
export function normaliseOrigin(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  // An origin is only scheme, host and port: a path, query or credentials mean it is something else.
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) return null;
  return url.origin;
}

/** The page's own origin, same as the server's: what the agent's, the inspector's and the export APIs accept. */
export function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  const normalised = normaliseOrigin(origin);
  return normalised !== null && host !== undefined && new URL(normalised).host === host.toLowerCase();
}

/**
 * Whether `origin` (the request's `Origin` header) may use the visitor's endpoints of the server reached
 * as `host` (the request's `Host` header).
 */
export function originAllowed(policy: AllowedOrigins, origin: string | undefined, host: string | undefined): boolean {
  if (sameOrigin(origin, host)) return true;
  const normalised = normaliseOrigin(origin!);
  if (normalised === null) return false;
  switch (policy.kind) {
    case 'any':
      return true;
    case 'loopback':
      return LOOPBACK_HOSTS.has(new URL(normalised).hostname);
    case 'list':
      return policy.origins.includes(normalised);
  }
}

/** Whether a request from `origin` may use a session issued to `sessionOrigin` (none: a session not bound to a page). */
export function issuedTo(sessionOrigin: string | undefined, origin: string | undefined): boolean {
  return sessionOrigin === undefined || (origin !== undefined && normaliseOrigin(origin) === normaliseOrigin(sessionOrigin));
}
