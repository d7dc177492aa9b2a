import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SignJWT, decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { AuthError, createAuth, hashPassword, MAX_ISSUED_AHEAD_SECONDS, resolveAuthSecret, storeTokenRegistry, verifyPassword, type TokenRegistry } from './auth.ts';
import { openStore } from './store.ts';
import { StoreUnavailableError } from './storeReads.ts';

const SECRET = 'test-secret-that-is-long-enough-for-hs256';
const agent = { id: 'ada', name: 'Ada Lovelace', pools: ['support', 'sales'], roles: ['agent'] };

async function rejection(promise: Promise<unknown>): Promise<AuthError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AuthError) return error;
    throw error;
  }
  throw new Error('expected the token to be refused');
}

describe('passwords', () => {
  it('hashes with a fresh salt, stores the parameters, and verifies', async () => {
    const first = await hashPassword('correct horse');
    const second = await hashPassword('correct horse');
    expect(first).toMatch(/^scrypt\$32768\$8\$3\$[\w-]+\$[\w-]+$/);
    expect(first).not.toBe(second);
    expect(await verifyPassword('correct horse', first)).toBe(true);
    expect(await verifyPassword('correct horse', second)).toBe(true);
    expect(await verifyPassword('correct horsf', first)).toBe(false);
    expect(await verifyPassword('', first)).toBe(false);
  });

  it('refuses hashes it did not write, including ones with runaway parameters', async () => {
    const good = await hashPassword('pw');
    expect(await verifyPassword('pw', 'plain-text')).toBe(false);
    expect(await verifyPassword('pw', good.replace('$32768$', '$1073741824$'))).toBe(false);
    expect(await verifyPassword('pw', good.replace('$32768$', '$1000$'))).toBe(false);
    expect(await verifyPassword('pw', good.replace(/\$[\w-]+$/, '$'))).toBe(false);
  });
});

describe('tokens', () => {
  const auth = createAuth({ secret: SECRET, agentTtlSeconds: 3600, visitorTtlSeconds: 60 });

  it('issues an agent token that verifies to the agent, with the claims the spec names', async () => {
    const before = Date.now();
    const { token, expiresAt } = await auth.issueAgentToken(agent);
    expect(await auth.verifyToken(token)).toEqual({ kind: 'agent', agentId: 'ada', name: 'Ada Lovelace', pools: ['support', 'sales'], roles: ['agent'] });
    expect(await auth.verifyToken(token, 'agent')).toMatchObject({ kind: 'agent' });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: 'callchart', aud: 'agent', sub: 'ada' });
    expect(claims.exp! * 1000).toBe(expiresAt);
    expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 3_600_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 3_600_000);
  });

  it('issues a short-lived visitor token', async () => {
    const { token, expiresAt } = await auth.issueVisitorToken({ visitorId: 'visitor-1', name: 'Vera' });
    expect(await auth.verifyToken(token)).toEqual({ kind: 'visitor', visitorId: 'visitor-1', name: 'Vera' });
    expect(decodeJwt(token)).toMatchObject({ aud: 'visitor', sub: 'visitor-1' });
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(60_000);
  });

  it('refuses a tampered token', async () => {
    const { token } = await auth.issueAgentToken(agent);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ ...decodeJwt(token), roles: ['inspector'] })).toString('base64url');
    expect((await rejection(auth.verifyToken(`${header}.${forged}.${signature}`))).code).toBe('unauthorized');
    const flipped = signature.startsWith('A') ? `B${signature.slice(1)}` : `A${signature.slice(1)}`;
    await rejection(auth.verifyToken(`${header}.${payload}.${flipped}`));
    await rejection(auth.verifyToken('not-a-token'));
    await rejection(auth.verifyToken(''));
  });

  it('refuses a token signed with another secret', async () => {
    const other = createAuth({ secret: 'another-secret-that-is-long-enough-too', agentTtlSeconds: 3600, visitorTtlSeconds: 60 });
    const { token } = await other.issueAgentToken(agent);
    await rejection(auth.verifyToken(token));
  });

  it('refuses an expired token', async () => {
    const realNow = Date.now();
    const past = createAuth({ secret: SECRET, agentTtlSeconds: 1, visitorTtlSeconds: 1, now: () => realNow - 10_000 });
    const { token } = await past.issueVisitorToken({ visitorId: 'visitor-1', name: 'Vera' });
    expect(await past.verifyToken(token)).toMatchObject({ visitorId: 'visitor-1' });
    const error = await rejection(auth.verifyToken(token));
    expect(error.reason).toMatch(/EXPIRED/);
  });

  it('refuses a token for another audience, an unexpected kind, or without the issuer', async () => {
    const key = new TextEncoder().encode(SECRET);
    const now = Math.floor(Date.now() / 1000);
    const base = () =>
      new SignJWT({ name: 'Ada Lovelace', pools: [], roles: ['inspector'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('ada')
        .setIssuedAt(now)
        .setExpirationTime(now + 60);
    await rejection(auth.verifyToken(await base().setIssuer('callchart').setAudience('admin').sign(key)));
    await rejection(auth.verifyToken(await base().setAudience('agent').sign(key)));
    await rejection(auth.verifyToken(await base().setIssuer('callchart').setAudience(['agent', 'visitor']).sign(key)));

    const visitor = await auth.issueVisitorToken({ visitorId: 'visitor-1', name: 'Vera' });
    await rejection(auth.verifyToken(visitor.token, 'agent'));
    const agentToken = await auth.issueAgentToken(agent);
    await rejection(auth.verifyToken(agentToken.token, 'visitor'));
  });

  it('refuses an unsigned token', async () => {
    const { token } = await auth.issueAgentToken(agent);
    const payload = token.split('.')[1]!;
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    await rejection(auth.verifyToken(`${header}.${payload}.`));
  });
});

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A database file of the test's own, removed after it. */
function databaseFile(): { databasePath: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'callchart-auth-'));
  dirs.push(dir);
  return { databasePath: path.join(dir, 'db.sqlite') };
}

/** A registry in memory, as the store keeps it: the accounts it knows and the tokens revoked. */
function memoryRegistry(agentIds: string[]): TokenRegistry & { revoked: Map<string, number> } {
  const revoked = new Map<string, number>();
  return {
    revoked,
    hasAgent: async (agentId) => agentIds.includes(agentId),
    isRevoked: async (tokenId) => revoked.has(tokenId),
    revoke: async (tokenId, expiresAt) => void revoked.set(tokenId, expiresAt),
  };
}

describe('token sessions and revocation', () => {
  it('gives every token its own random jti, which is the session a logout revokes', async () => {
    const registry = memoryRegistry(['ada']);
    const auth = createAuth({ secret: SECRET, agentTtlSeconds: 3600, visitorTtlSeconds: 60, registry });
    const first = await auth.issueAgentToken(agent);
    const second = await auth.issueAgentToken(agent);
    const { jti } = decodeJwt(first.token);
    expect(jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(decodeJwt(second.token).jti).not.toBe(jti);

    const verified = await auth.verifySession(first.token);
    expect(verified).toEqual({ principal: await auth.verifyToken(first.token), session: { id: jti, expiresAt: first.expiresAt } });
    await auth.revoke(verified.session);
    expect(registry.revoked).toEqual(new Map([[jti, first.expiresAt]]));
    expect((await rejection(auth.verifyToken(first.token))).reason).toBe('revoked');
    expect((await rejection(auth.verifyToken(first.token, 'agent'))).code).toBe('unauthorized');
    // Another login of the same agent is another session, untouched.
    expect(await auth.verifyToken(second.token)).toMatchObject({ agentId: 'ada' });
  });

  it('refuses a token without a jti, even one correctly signed', async () => {
    const key = new TextEncoder().encode(SECRET);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ name: 'Ada Lovelace', pools: [], roles: ['agent'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('callchart')
      .setAudience('agent')
      .setSubject('ada')
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(key);
    expect((await rejection(createAuth({ secret: SECRET, agentTtlSeconds: 60, visitorTtlSeconds: 60 }).verifyToken(token))).reason).toMatch(/CLAIM/);
  });

  it('refuses an agent token for an account the registry does not know; visitors need no account', async () => {
    const auth = createAuth({ secret: SECRET, agentTtlSeconds: 3600, visitorTtlSeconds: 60, registry: memoryRegistry(['grace']) });
    const { token } = await auth.issueAgentToken(agent);
    expect((await rejection(auth.verifyToken(token))).reason).toBe('no such agent');
    const visitor = await auth.issueVisitorToken({ visitorId: 'visitor-1', name: 'Vera' });
    expect(await auth.verifyToken(visitor.token)).toMatchObject({ visitorId: 'visitor-1' });
  });

  it(`takes a token issued up to ${String(MAX_ISSUED_AHEAD_SECONDS)} s ahead of its clock, and refuses one issued later still`, async () => {
    const realNow = Date.now();
    const auth = createAuth({ secret: SECRET, agentTtlSeconds: 3600, visitorTtlSeconds: 3600, now: () => realNow });
    const ahead = (seconds: number) => createAuth({ secret: SECRET, agentTtlSeconds: 3600, visitorTtlSeconds: 3600, now: () => realNow + seconds * 1000 });
    const justWithin = await ahead(MAX_ISSUED_AHEAD_SECONDS - 1).issueVisitorToken({ visitorId: 'visitor-1', name: 'Vera' });
    expect(await auth.verifyToken(justWithin.token)).toMatchObject({ visitorId: 'visitor-1' });
    const tooFar = await ahead(MAX_ISSUED_AHEAD_SECONDS + 2).issueAgentToken(agent);
    expect((await rejection(auth.verifyToken(tooFar.token))).reason).toBe('issued in the future');
  });

  it('will not pretend to revoke without a registry', async () => {
    const auth = createAuth({ secret: SECRET, agentTtlSeconds: 3600, visitorTtlSeconds: 60 });
    const { session } = await auth.verifySession((await auth.issueAgentToken(agent)).token);
    await expect(auth.revoke(session)).rejects.toThrow(/registry/);
  });

  it('refuses a token whose revocation cannot be checked in time, with StoreUnavailableError (a registry that never answers, faked)', async () => {
    const never = new Promise<boolean>(() => {});
    const stalled: TokenRegistry = { hasAgent: () => never, isRevoked: () => never, revoke: () => new Promise<void>(() => {}) };
    const auth = createAuth({ secret: SECRET, agentTtlSeconds: 3600, visitorTtlSeconds: 60, registry: stalled, registryDeadlineMs: 50 });
    const { token } = await auth.issueVisitorToken({ visitorId: 'visitor-1', name: 'Vera' });
    const refused = auth.verifyToken(token);
    await expect(refused).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(refused).rejects.not.toBeInstanceOf(AuthError);
    const { session } = await createAuth({ secret: SECRET, agentTtlSeconds: 3600, visitorTtlSeconds: 60 }).verifySession(token);
    await expect(auth.revoke(session)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

describe('storeTokenRegistry', () => {
  it('keeps revocations in the store across a restart, knows its agents, and purges expired rows when opened', async () => {
    const file = databaseFile();
    let clock = Date.now();
    let store = await openStore(file);
    await store.agents.seed([{ ...agent, email: 'ada@example.com', passwordHash: 'scrypt$x' }]);
    const options = { secret: SECRET, agentTtlSeconds: 60, visitorTtlSeconds: 60, now: () => clock };
    let auth = createAuth({ ...options, registry: storeTokenRegistry(store, () => clock) });
    const { token } = await auth.issueAgentToken(agent);
    const other = await auth.issueAgentToken(agent);
    await auth.revoke((await auth.verifySession(token)).session);
    expect((await rejection(auth.verifyToken(token))).reason).toBe('revoked');
    expect((await rejection(auth.verifyToken((await auth.issueAgentToken({ ...agent, id: 'nobody' })).token))).reason).toBe('no such agent');
    await store.close();

    store = await openStore(file);
    auth = createAuth({ ...options, registry: storeTokenRegistry(store, () => clock) });
    expect((await rejection(auth.verifyToken(token))).reason).toBe('revoked');
    expect(await auth.verifyToken(other.token)).toMatchObject({ agentId: 'ada' });
    await store.close();

    // Once the token has expired its row is no longer needed, and the next open sweeps it out.
    clock += 61_000;
    store = await openStore(file);
    expect(await store.revokedTokens.has(decodeJwt(token).jti!)).toBe(true);
    expect(await storeTokenRegistry(store, () => clock).purged).toBe(1);
    expect(await store.revokedTokens.has(decodeJwt(token).jti!)).toBe(false);
    await store.close();
  });

  it('fails closed when the store is down: the token is refused with StoreUnavailableError, a revocation is not taken for done', async () => {
    const store = await openStore(databaseFile());
    await store.agents.seed([{ ...agent, email: 'ada@example.com', passwordHash: 'scrypt$x' }]);
    const registry = storeTokenRegistry(store);
    await registry.purged;
    const auth = createAuth({ secret: SECRET, agentTtlSeconds: 60, visitorTtlSeconds: 60, registry });
    const agentToken = await auth.issueAgentToken(agent);
    const visitorToken = await auth.issueVisitorToken({ visitorId: 'visitor-1', name: 'Vera' });
    const { session } = await auth.verifySession(agentToken.token);
    // The real store, closed: every read and write it is asked for from here on fails.
    await store.close();
    for (const token of [agentToken.token, visitorToken.token]) {
      const refused = auth.verifyToken(token);
      await expect(refused).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(refused).rejects.toThrow('The store is unavailable.');
    }
    await expect(auth.revoke(session)).rejects.toBeInstanceOf(StoreUnavailableError);
    // A token bad on its face is still a plain refusal: the store is never asked.
    expect((await rejection(auth.verifyToken('not-a-token'))).code).toBe('unauthorized');
  });
});

describe('resolveAuthSecret', () => {
  it('prefers AUTH_SECRET, and otherwise keeps one generated secret across restarts', async () => {
    const file = databaseFile();
    let store = await openStore(file);
    expect(await resolveAuthSecret({ authSecret: SECRET }, store)).toBe(SECRET);
    const generated = await resolveAuthSecret({ authSecret: null }, store);
    expect(generated).toMatch(/^[\w-]{43}$/);
    const { token } = await createAuth({ secret: generated, agentTtlSeconds: 60, visitorTtlSeconds: 60 }).issueAgentToken(agent);
    await store.close();

    store = await openStore(file);
    const again = await resolveAuthSecret({ authSecret: null }, store);
    await store.close();
    expect(again).toBe(generated);
    const restarted = createAuth({ secret: again, agentTtlSeconds: 60, visitorTtlSeconds: 60 });
    expect(await restarted.verifyToken(token)).toMatchObject({ agentId: 'ada' });
  });
});
