import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultNodeId, loadConfig } from './config.ts';

const CLUSTER = { DATABASE_URL: 'postgres://127.0.0.1:5432/callchart', REDIS_URL: 'redis://127.0.0.1:6379' };

function failure(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

describe('loadConfig', () => {
  it('has safe defaults: loopback, no ICE servers, the documented timings', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      databasePath: path.resolve('data/callchart.db'),
      authSecret: null,
      tokenTtlSeconds: { agent: 12 * 3600, visitor: 15 * 60 },
      ice: { servers: [], transportPolicy: 'all', turn: null },
      timings: {
        ringTimeoutMs: 15_000,
        agentGraceMs: 10_000,
        maxQueueWaitMs: 120_000,
        reconnectionTimeoutMs: 35_000,
        resumeWindowMs: 40_000,
        peerAckTimeoutMs: 2_500,
        pingIntervalMs: 2_500,
        pingTimeoutMs: 2_500,
      },
      maxReassignments: 5,
      logLevel: 'info',
      inspectClients: false,
      allowedOrigins: { kind: 'loopback' },
      drainMs: 0,
      trustProxy: [],
      cluster: null,
    });
    expect(config.agentsFile).toMatch(/server[/\\]config[/\\]agents\.json$/);
    expect(path.isAbsolute(config.agentsFile)).toBe(true);
  });

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '0',
      HOST: '0.0.0.0',
      DATABASE_PATH: 'tmp/x.db',
      AUTH_SECRET: 'x'.repeat(32),
      AGENT_TOKEN_TTL_SECONDS: '60',
      VISITOR_TOKEN_TTL_SECONDS: '5',
      AGENTS_FILE: 'agents.test.json',
      ICE_SERVERS: '[{"urls":["turn:127.0.0.1:3478"],"username":"u","credential":"c"}]',
      ICE_TRANSPORT_POLICY: 'relay',
      RING_TIMEOUT_MS: '100',
      AGENT_GRACE_MS: '200',
      MAX_QUEUE_WAIT_MS: '300',
      MAX_REASSIGNMENTS: '0',
      RECONNECTION_TIMEOUT_MS: '400',
      RESUME_WINDOW_MS: '500',
      PEER_ACK_TIMEOUT_MS: '600',
      PING_INTERVAL_MS: '800',
      PING_TIMEOUT_MS: '900',
      TURN_SECRET: 't'.repeat(32),
      TURN_URLS: 'turn:127.0.0.1:3478?transport=udp, turns:turn.example:5349',
      TURN_CREDENTIAL_TTL_SECONDS: '120',
      LOG_LEVEL: 'debug',
      INSPECT_CLIENTS: 'on',
      ALLOWED_ORIGINS: 'https://Shop.example, https://help.example:8443/',
      DRAIN_MS: '700',
      TRUST_PROXY: '10.0.0.0/8',
      LIMIT_LOGIN_ACCOUNT_FAILURES: '1',
      LIMIT_LOGIN_ADDRESS_FAILURES: '2',
      LIMIT_LOGIN_WINDOW_SECONDS: '3',
      LIMIT_LOGIN_LOCK_SECONDS: '4',
      LIMIT_LOGIN_LOCK_MAX_SECONDS: '5',
      LIMIT_VISITOR_SESSIONS: '6',
      LIMIT_VISITOR_SESSIONS_WINDOW_SECONDS: '7',
      LIMIT_VISITOR_REQUESTS: '8',
      LIMIT_VISITOR_REQUESTS_WINDOW_SECONDS: '9',
      LIMIT_RERING_WINDOW_MS: '10',
      LIMIT_SOCKETS_PER_VISITOR: '11',
      LIMIT_SOCKETS_PER_AGENT_SESSION: '12',
      LIMIT_SOCKET_EVENTS_PER_SECOND: '13',
      LIMIT_SOCKET_EVENT_BURST: '14',
      LIMIT_SOCKET_STRIKES_PER_MINUTE: '15',
      LIMIT_REJECTION_LOGS_PER_MINUTE: '16',
      DATABASE_URL: 'postgres://callchart:pw@127.0.0.1:5432/callchart',
      REDIS_URL: 'redis://127.0.0.1:6379/0',
      NODE_ID: 'node-a.1_x',
      LEASE_TTL_MS: '3000',
      LEASE_RENEW_MS: '1000',
    });
    expect(config).toEqual({
      port: 0,
      host: '0.0.0.0',
      databasePath: path.resolve('tmp/x.db'),
      authSecret: 'x'.repeat(32),
      tokenTtlSeconds: { agent: 60, visitor: 5 },
      agentsFile: path.resolve('agents.test.json'),
      ice: {
        servers: [{ urls: ['turn:127.0.0.1:3478'], username: 'u', credential: 'c' }],
        transportPolicy: 'relay',
        turn: { secret: 't'.repeat(32), urls: ['turn:127.0.0.1:3478?transport=udp', 'turns:turn.example:5349'], ttlSeconds: 120 },
      },
      timings: { ringTimeoutMs: 100, agentGraceMs: 200, maxQueueWaitMs: 300, reconnectionTimeoutMs: 400, resumeWindowMs: 500, peerAckTimeoutMs: 600, pingIntervalMs: 800, pingTimeoutMs: 900 },
      maxReassignments: 0,
      logLevel: 'debug',
      inspectClients: true,
      allowedOrigins: { kind: 'list', origins: ['https://shop.example', 'https://help.example:8443'] },
      drainMs: 700,
      trustProxy: ['10.0.0.0/8'],
      limits: {
        login: { accountFailures: 1, addressFailures: 2, windowS: 3, lockS: 4, lockMaxS: 5 },
        visitorSessions: { points: 6, windowS: 7 },
        visitorRequests: { points: 8, windowS: 9 },
        reringWindowMs: 10,
        sockets: { perVisitor: 11, perAgentSession: 12, eventsPerSecond: 13, eventBurst: 14, strikesPerMinute: 15, rejectionLogsPerMinute: 16 },
      },
      cluster: {
        databaseUrl: 'postgres://callchart:pw@127.0.0.1:5432/callchart',
        redisUrl: 'redis://127.0.0.1:6379/0',
        nodeId: 'node-a.1_x',
        leaseTtlMs: 3000,
        leaseRenewMs: 1000,
      },
    });
  });

  it('limits every door by default, at levels a person never reaches', () => {
    expect(loadConfig({}).limits).toEqual({
      login: { accountFailures: 5, addressFailures: 20, windowS: 900, lockS: 60, lockMaxS: 3_600 },
      visitorSessions: { points: 30, windowS: 60 },
      visitorRequests: { points: 6, windowS: 60 },
      reringWindowMs: 10_000,
      sockets: { perVisitor: 3, perAgentSession: 5, eventsPerSecond: 20, eventBurst: 100, strikesPerMinute: 200, rejectionLogsPerMinute: 5 },
    });
  });

  it('treats an empty variable as unset and keeps :memory: as it is', () => {
    expect(loadConfig({ PORT: '', DATABASE_PATH: ':memory:' })).toMatchObject({ port: 3000, databasePath: ':memory:' });
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT', 'PORT must be a whole number'],
    [{ PORT: '65536' }, 'PORT', 'PORT must be at most 65535'],
    [{ PORT: '-1' }, 'PORT', 'PORT must be a whole number'],
    [{ HOST: 'local host' }, 'HOST', 'HOST must be a host name or an IP address'],
    [{ AUTH_SECRET: 'short' }, 'AUTH_SECRET', 'AUTH_SECRET must be at least 32 characters'],
    [{ RING_TIMEOUT_MS: '1.5' }, 'RING_TIMEOUT_MS', 'RING_TIMEOUT_MS must be a whole number'],
    [{ RECONNECTION_TIMEOUT_MS: '0' }, 'RECONNECTION_TIMEOUT_MS', 'RECONNECTION_TIMEOUT_MS must be at least 1'],
    [{ ICE_SERVERS: '[{"urls":' }, 'ICE_SERVERS', 'ICE_SERVERS must be a JSON array of ICE servers'],
    [{ ICE_SERVERS: '{"urls":"stun:x"}' }, 'ICE_SERVERS', 'ICE_SERVERS must be a JSON array of ICE servers'],
    [{ ICE_SERVERS: '[{"urls":"http://x"}]' }, 'ICE_SERVERS', 'ICE_SERVERS[0].urls'],
    [{ ICE_TRANSPORT_POLICY: 'none' }, 'ICE_TRANSPORT_POLICY', 'ICE_TRANSPORT_POLICY must be one of all, relay'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', 'LOG_LEVEL must be one of'],
    [{ TURN_SECRET: 't'.repeat(32) }, 'TURN_URLS', 'TURN_URLS must be set with TURN_SECRET'],
    [{ TURN_SECRET: 't'.repeat(32), TURN_URLS: 'stun:stun.example' }, 'TURN_URLS', 'TURN_URLS must be turn: or turns: URLs'],
    [{ TURN_SECRET: 'short', TURN_URLS: 'turn:x' }, 'TURN_SECRET', 'TURN_SECRET must be at least 32 characters'],
    [{ PING_TIMEOUT_MS: '50' }, 'PING_TIMEOUT_MS', 'PING_TIMEOUT_MS must be at least 100'],
    [{ LIMIT_LOGIN_ACCOUNT_FAILURES: '0' }, 'LIMIT_LOGIN_ACCOUNT_FAILURES', 'LIMIT_LOGIN_ACCOUNT_FAILURES must be at least 1'],
    [{ LIMIT_SOCKETS_PER_VISITOR: 'three' }, 'LIMIT_SOCKETS_PER_VISITOR', 'LIMIT_SOCKETS_PER_VISITOR must be a whole number'],
    [{ LIMIT_LOGIN_LOCK_SECONDS: '86401' }, 'LIMIT_LOGIN_LOCK_SECONDS', 'LIMIT_LOGIN_LOCK_SECONDS must be at most 86400'],
    [{ ALLOWED_ORIGINS: 'https://shop.example/checkout' }, 'ALLOWED_ORIGINS', 'is not an origin'],
    [{ ALLOWED_ORIGINS: 'shop.example' }, 'ALLOWED_ORIGINS', 'is not an origin'],
    [{ ALLOWED_ORIGINS: 'https://a.example, ftp://b.example' }, 'ALLOWED_ORIGINS', '"ftp://b.example" is not an origin'],
    [{ ...CLUSTER, DATABASE_URL: 'mysql://db.example/callchart' }, 'DATABASE_URL', 'DATABASE_URL must be a postgres:// or postgresql:// URL'],
    [{ ...CLUSTER, DATABASE_URL: 'postgres:callchart' }, 'DATABASE_URL', 'DATABASE_URL must be a postgres:// or postgresql:// URL'],
    [{ ...CLUSTER, DATABASE_URL: '/var/lib/callchart.db' }, 'DATABASE_URL', 'DATABASE_URL must be a postgres:// or postgresql:// URL'],
    [{ ...CLUSTER, DATABASE_URL: 'postgres://[::1' }, 'DATABASE_URL', 'DATABASE_URL must be a postgres:// or postgresql:// URL'],
    [{ ...CLUSTER, REDIS_URL: 'http://127.0.0.1:6379' }, 'REDIS_URL', 'REDIS_URL must be a redis:// or rediss:// URL'],
    [{ ...CLUSTER, REDIS_URL: '127.0.0.1:6379' }, 'REDIS_URL', 'REDIS_URL must be a redis:// or rediss:// URL'],
    [{ DATABASE_URL: CLUSTER.DATABASE_URL }, 'REDIS_URL', 'REDIS_URL must be set with DATABASE_URL'],
    [{ REDIS_URL: CLUSTER.REDIS_URL }, 'DATABASE_URL', 'DATABASE_URL must be set with REDIS_URL'],
    [{ ...CLUSTER, NODE_ID: 'node a' }, 'NODE_ID', 'NODE_ID must be 1 to 64 letters, digits, dots, underscores or hyphens'],
    [{ ...CLUSTER, NODE_ID: '-node' }, 'NODE_ID', 'NODE_ID must be 1 to 64'],
    [{ ...CLUSTER, NODE_ID: 'n'.repeat(65) }, 'NODE_ID', 'NODE_ID must be 1 to 64'],
    [{ ...CLUSTER, NODE_ID: 'node:1' }, 'NODE_ID', 'NODE_ID must be 1 to 64'],
    [{ ...CLUSTER, LEASE_TTL_MS: '5s' }, 'LEASE_TTL_MS', 'LEASE_TTL_MS must be a whole number'],
    [{ ...CLUSTER, LEASE_TTL_MS: '100' }, 'LEASE_TTL_MS', 'LEASE_TTL_MS must be at least 200'],
    [{ ...CLUSTER, LEASE_RENEW_MS: '10' }, 'LEASE_RENEW_MS', 'LEASE_RENEW_MS must be at least 50'],
    [{ ...CLUSTER, LEASE_RENEW_MS: '2500' }, 'LEASE_RENEW_MS', 'LEASE_RENEW_MS must be less than half of LEASE_TTL_MS (5000)'],
    [{ ...CLUSTER, LEASE_TTL_MS: '1000', LEASE_RENEW_MS: '600' }, 'LEASE_RENEW_MS', 'LEASE_RENEW_MS must be less than half of LEASE_TTL_MS (1000)'],
    // Checked without cluster mode too: a typo should not wait for the day the node joins a cluster.
    [{ LEASE_TTL_MS: '1000' }, 'LEASE_RENEW_MS', 'less than half of LEASE_TTL_MS (1000)'],
  ])('refuses %j, naming %s', (env, variable, message) => {
    const error = failure(env);
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(message);
  });

  it('never echoes the secret it refuses', () => {
    expect(failure({ AUTH_SECRET: 'hunter2' }).message).not.toContain('hunter2');
    expect(failure({ ...CLUSTER, DATABASE_URL: 'mysql://callchart:hunter2@db.example/x' }).message).not.toContain('hunter2');
    expect(failure({ ...CLUSTER, REDIS_URL: 'http://:hunter2@cache.example' }).message).not.toContain('hunter2');
  });
});

describe('cluster mode', () => {
  it('is off unless both URLs are set, and then has the documented lease timings', () => {
    expect(loadConfig({}).cluster).toBeNull();
    expect(loadConfig({ NODE_ID: 'a', LEASE_TTL_MS: '9000' }).cluster).toBeNull();
    expect(loadConfig(CLUSTER).cluster).toMatchObject({ databaseUrl: CLUSTER.DATABASE_URL, redisUrl: CLUSTER.REDIS_URL, leaseTtlMs: 5_000, leaseRenewMs: 1_500 });
  });

  it.each([
    ['postgresql://db.example/callchart?sslmode=require', 'rediss://:pw@cache.example:6380'],
    // A local server's unix socket, as pg spells it.
    ['postgres:///callchart?host=/var/run/postgresql', 'redis://cache.example'],
    ['POSTGRES://DB.EXAMPLE/x', 'REDIS://CACHE.EXAMPLE'],
  ])('accepts %s with %s, as given', (databaseUrl, redisUrl) => {
    expect(loadConfig({ DATABASE_URL: databaseUrl, REDIS_URL: redisUrl }).cluster).toMatchObject({ databaseUrl, redisUrl });
  });

  it('keeps the SQLite path beside the URLs, unused, so one environment file serves both modes', () => {
    expect(loadConfig({ ...CLUSTER, DATABASE_PATH: 'tmp/x.db' })).toMatchObject({ databasePath: path.resolve('tmp/x.db'), cluster: { databaseUrl: CLUSTER.DATABASE_URL } });
  });

  it('trusts no proxy by default, and the listed addresses, ranges and named ranges with TRUST_PROXY', () => {
    expect(loadConfig({}).trustProxy).toEqual([]);
    expect(loadConfig({ TRUST_PROXY: ' 10.0.0.5 , 192.168.0.0/16,loopback,::1, fd00::/8,' }).trustProxy).toEqual(['10.0.0.5', '192.168.0.0/16', 'loopback', '::1', 'fd00::/8']);
  });

  it.each(['*', 'true', 'proxy.example', '10.0.0.0/33', '10.0.0.1, nope', '::1/129'])('refuses TRUST_PROXY=%j, naming the variable', (value) => {
    const error = failure({ TRUST_PROXY: value });
    expect(error.variable).toBe('TRUST_PROXY');
    expect(error.message).toMatch(/^Invalid configuration: TRUST_PROXY .*is not an IP address, a CIDR range, or one of loopback, linklocal, uniquelocal\.$/);
  });

  it('names a node by host, pid and a random part unless NODE_ID says otherwise', () => {
    const first = loadConfig(CLUSTER).cluster!.nodeId;
    const second = loadConfig(CLUSTER).cluster!.nodeId;
    expect(first).toMatch(new RegExp(`^[A-Za-z0-9][A-Za-z0-9._-]*-${String(process.pid)}-[0-9a-f]{6}$`));
    expect(second).not.toBe(first);
    // Whatever the default is, it passes the check a configured NODE_ID must.
    expect(loadConfig({ ...CLUSTER, NODE_ID: first }).cluster!.nodeId).toBe(first);
  });

  it.each([
    ['web-1.internal', /^web-1\.internal-\d+-[0-9a-f]{6}$/],
    ['__host name/with:odd*chars', /^host-name-with-odd-chars-\d+-[0-9a-f]{6}$/],
    ['', /^node-\d+-[0-9a-f]{6}$/],
    ['h'.repeat(200), /^h{40}-\d+-[0-9a-f]{6}$/],
  ])('makes a valid default name from the host name %j', (host, expected) => {
    const id = defaultNodeId(host);
    expect(id).toMatch(expected);
    expect(loadConfig({ ...CLUSTER, NODE_ID: id }).cluster!.nodeId).toBe(id);
  });
});
