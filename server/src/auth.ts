/**
 * Who is calling: password hashes for agents, and the signed tokens (HS256 JWTs, jose) that agents and
 * visitors present to the HTTP API and to the Socket.IO handshake. Each token has its own id (`jti`), so
 * one login can be revoked (a logout) without touching any other.
 */
import { randomBytes, randomUUID, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import type { ServerConfig } from './config.ts';
import type { Store } from './store.ts';
import { storeRead } from './storeReads.ts';

// ---------------------------------------------------------------------------------------------
// Passwords

// One of OWASP's equivalent scrypt settings (N=2^15, r=8, p=3): 32 MiB per hash instead of the 128 MiB
// of N=2^17, for the same work. The parameters are stored with each hash, so they can be raised later
// without invalidating existing hashes.
const SCRYPT = { N: 2 ** 15, r: 8, p: 3 } as const;
const KEY_LENGTH = 64;
const SALT_LENGTH = 16;
// Bounds on parameters read back from a stored hash, so a corrupt row cannot make one login take
// minutes or gigabytes.
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;

function deriveKey(password: string, salt: Buffer, keyLength: number, params: { N: number; r: number; p: number }) {
  const options: ScryptOptions = { ...params, maxmem: 128 * params.N * params.r * 2 };
  return new Promise<Buffer>((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, keyLength, options, (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}

/** `scrypt$N$r$p$salt$key`, salt and key in base64url; a fresh random salt every time. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await deriveKey(password, salt, KEY_LENGTH, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

const STORED_HASH = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/;

/** False for a wrong password and for a stored hash this module did not write. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const match = STORED_HASH.exec(stored);
  if (match === null) return false;
  const [, n, r, p, saltText, keyText] = match;
  const params = { N: Number(n), r: Number(r), p: Number(p) };
  const powerOfTwo = params.N > 1 && (params.N & (params.N - 1)) === 0;
  if (!powerOfTwo || params.N > MAX_N || params.r < 1 || params.r > MAX_R || params.p < 1 || params.p > MAX_P) {
    return false;
  }
  const salt = Buffer.from(saltText ?? '', 'base64url');
  const expected = Buffer.from(keyText ?? '', 'base64url');
  if (salt.length === 0 || expected.length === 0) return false;
  const actual = await deriveKey(password, salt, expected.length, params);
  return timingSafeEqual(actual, expected);
}

// ---------------------------------------------------------------------------------------------
// Tokens

export type Principal =
  | { kind: 'agent'; agentId: string; name: string; pools: string[]; roles: string[] }
  | { kind: 'visitor'; visitorId: string; name: string; origin?: string };

/** Any token that is missing, malformed, forged, expired or meant for someone else. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  readonly code = 'unauthorized' as const;
  /** Why, for the log only: a client is told no more than `unauthorized`. */
  readonly reason: string;
  constructor(reason: string) {
    super('The token is missing, invalid or expired.');
    this.reason = reason;
  }
}

export interface IssuedToken {
  token: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

/** The login or visitor session one token is: what a logout revokes. */
export interface TokenSession {
  /** The token's `jti`. */
  id: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

/** What the auth asks of the accounts and the revocation list; the store answers in the server. */
export interface TokenRegistry {
  hasAgent(agentId: string): Promise<boolean>;
  isRevoked(tokenId: string): Promise<boolean>;
  /** Refuses the token from now until `expiresAt` (epoch ms), when it would expire anyway. */
  revoke(tokenId: string, expiresAt: number): Promise<void>;
}

export interface AuthOptions {
  secret: string;
  agentTtlSeconds: number;
  visitorTtlSeconds: number;
  /** Epoch milliseconds; injected so expiry can be tested without waiting. */
  now?: () => number;
  /**
   * Accounts and revocations. Without it (a tool that only mints tokens) a token is checked by its
   * signature and claims alone, and `revoke` refuses to run rather than pretend.
   */
  registry?: TokenRegistry;
  /** How long a registry question may take before the token is refused as unchecked; `STORE_READ_DEADLINE_MS` by default. */
  registryDeadlineMs?: number;
}

export interface Auth {
  issueAgentToken(agent: { id: string; name: string; pools: string[]; roles: string[] }): Promise<IssuedToken>;
  /** `origin`: the page the session was issued to, when a browser asked for it. */
  issueVisitorToken(visitor: { visitorId: string; name: string; origin?: string }): Promise<IssuedToken>;
  /**
   * Resolves to who the token speaks for; rejects with `AuthError`. `expected` narrows the audience.
   * When the registry cannot say whether the token was revoked, the token is refused all the same, with
   * `StoreUnavailableError`: it may be good, so the caller should say "try again", not "sign in again".
   */
  verifyToken(token: string, expected?: Principal['kind']): Promise<Principal>;
  /** As `verifyToken`, with the session the token is. */
  verifySession(token: string, expected?: Principal['kind']): Promise<{ principal: Principal; session: TokenSession }>;
  /**
   * The session's token is refused everywhere from now on: the HTTP API and both socket handshakes.
   * Rejects with `StoreUnavailableError` when the store did not confirm the revocation; revoking again is
   * harmless, so the logout may simply be retried.
   */
  revoke(session: TokenSession): Promise<void>;
}

const ISSUER = 'callchart';
const MAX_TOKEN_LENGTH = 4_096;
/** How far ahead of this server's clock a token may have been issued: another server's clock may run early. */
export const MAX_ISSUED_AHEAD_SECONDS = 30;

const Registered = {
  jti: z.string().min(1).max(128),
  iat: z.number(),
  exp: z.number(),
};
const AgentClaims = z.object({
  ...Registered,
  aud: z.literal('agent'),
  sub: z.string().min(1),
  name: z.string().min(1),
  pools: z.array(z.string()),
  roles: z.array(z.string()),
});
const VisitorClaims = z.object({
  ...Registered,
  aud: z.literal('visitor'),
  sub: z.string().min(1),
  name: z.string().min(1),
  origin: z.string().min(1).optional(),
});
const Claims = z.discriminatedUnion('aud', [AgentClaims, VisitorClaims]);

export function createAuth(options: AuthOptions): Auth {
  const key = new TextEncoder().encode(options.secret);
  const now = options.now ?? Date.now;
  const registry = options.registry;
  const deadlineMs = options.registryDeadlineMs;

  async function sign(
    audience: 'agent' | 'visitor',
    subject: string,
    claims: Record<string, unknown>,
    ttlSeconds: number,
  ): Promise<IssuedToken> {
    const issuedAt = Math.floor(now() / 1000);
    const expiresAt = issuedAt + ttlSeconds;
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(audience)
      .setSubject(subject)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .setJti(randomUUID())
      .sign(key);
    return { token, expiresAt: expiresAt * 1000 };
  }

  async function verifySession(token: string, expected?: Principal['kind']): Promise<{ principal: Principal; session: TokenSession }> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      throw new AuthError('token missing or too long');
    }
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, key, {
        issuer: ISSUER,
        audience: expected ?? ['agent', 'visitor'],
        algorithms: ['HS256'],
        requiredClaims: ['sub', 'iat', 'exp', 'jti'],
        currentDate: new Date(now()),
      }));
    } catch (error) {
      if (error instanceof joseErrors.JOSEError) throw new AuthError(error.code);
      throw error;
    }
    const claims = Claims.safeParse(payload);
    if (!claims.success) throw new AuthError('unexpected claims');
    const c = claims.data;
    // jose checks `iat` only against a maximum age; a token from the future is a forgery or a broken clock.
    if (c.iat > now() / 1000 + MAX_ISSUED_AHEAD_SECONDS) throw new AuthError('issued in the future');
    // Asked last, so a token that is bad on its face costs the store nothing. A registry that cannot answer
    // refuses the token: a revoked one must never pass because the store was down.
    if (registry) {
      const [revoked, known] = await Promise.all([
        storeRead(registry.isRevoked(c.jti), deadlineMs),
        c.aud === 'agent' ? storeRead(registry.hasAgent(c.sub), deadlineMs) : true,
      ]);
      if (revoked) throw new AuthError('revoked');
      if (!known) throw new AuthError('no such agent');
    }
    const principal: Principal =
      c.aud === 'agent'
        ? { kind: 'agent', agentId: c.sub, name: c.name, pools: c.pools, roles: c.roles }
        : { kind: 'visitor', visitorId: c.sub, name: c.name, ...(c.origin === undefined ? {} : { origin: c.origin }) };
    return { principal, session: { id: c.jti, expiresAt: c.exp * 1000 } };
  }

  return {
    issueAgentToken: (agent) =>
      sign('agent', agent.id, { name: agent.name, pools: agent.pools, roles: agent.roles }, options.agentTtlSeconds),

    issueVisitorToken: (visitor) =>
      sign('visitor', visitor.visitorId, { name: visitor.name, ...(visitor.origin === undefined ? {} : { origin: visitor.origin }) }, options.visitorTtlSeconds),

    verifyToken: async (token, expected) => (await verifySession(token, expected)).principal,

    verifySession,

    async revoke(session) {
      if (!registry) throw new Error('Tokens cannot be revoked without a token registry.');
      await storeRead(registry.revoke(session.id, session.expiresAt), deadlineMs);
    },
  };
}

export interface StoreTokenRegistry extends TokenRegistry {
  /**
   * The sweep of expired revocations started when the registry was made: how many rows went. Nothing
   * depends on it (an expired token is refused anyway), so a sweep that fails is left for the next start.
   */
  readonly purged: Promise<number>;
}

/** The registry on the store: the agents it keeps, and its revocation list, purged of expired rows here. */
export function storeTokenRegistry(store: Store, now: () => number = Date.now): StoreTokenRegistry {
  const purged = store.revokedTokens.purge(now());
  // Handled here so a failed sweep nobody waits for is not an unhandled rejection; whoever awaits it still sees it.
  purged.catch(() => {});
  return {
    purged,
    hasAgent: async (agentId) => (await store.agents.get(agentId)) !== undefined,
    isRevoked: (tokenId) => store.revokedTokens.has(tokenId),
    revoke: (tokenId, expiresAt) => store.revokedTokens.add({ jti: tokenId, expiresAt, revokedAt: now() }),
  };
}

const SECRET_SETTING = 'auth.secret';

/**
 * AUTH_SECRET when set; otherwise a random secret generated on the first start and kept in the store,
 * so tokens stay valid across restarts without any setup.
 */
export async function resolveAuthSecret(config: Pick<ServerConfig, 'authSecret'>, store: Store): Promise<string> {
  if (config.authSecret !== null) return config.authSecret;
  return store.settings.getOrInsert(SECRET_SETTING, randomBytes(32).toString('base64url'));
}
