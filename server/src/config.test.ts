import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

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
      ice: { servers: [], transportPolicy: 'all' },
      timings: {
        ringTimeoutMs: 15_000,
        agentGraceMs: 10_000,
        maxQueueWaitMs: 120_000,
        reconnectionTimeoutMs: 35_000,
        resumeWindowMs: 40_000,
        peerAckTimeoutMs: 2_500,
      },
      maxReassignments: 5,
      logLevel: 'info',
      inspectClients: false,
      allowedOrigins: { kind: 'loopback' },
      drainMs: 0,
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
      LOG_LEVEL: 'debug',
      INSPECT_CLIENTS: 'on',
      ALLOWED_ORIGINS: 'https://Shop.example, https://help.example:8443/',
      DRAIN_MS: '700',
    });
    expect(config).toEqual({
      port: 0,
      host: '0.0.0.0',
      databasePath: path.resolve('tmp/x.db'),
      authSecret: 'x'.repeat(32),
      tokenTtlSeconds: { agent: 60, visitor: 5 },
      agentsFile: path.resolve('agents.test.json'),
      ice: { servers: [{ urls: ['turn:127.0.0.1:3478'], username: 'u', credential: 'c' }], transportPolicy: 'relay' },
      timings: { ringTimeoutMs: 100, agentGraceMs: 200, maxQueueWaitMs: 300, reconnectionTimeoutMs: 400, resumeWindowMs: 500, peerAckTimeoutMs: 600 },
      maxReassignments: 0,
      logLevel: 'debug',
      inspectClients: true,
      allowedOrigins: { kind: 'list', origins: ['https://shop.example', 'https://help.example:8443'] },
      drainMs: 700,
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
    [{ ALLOWED_ORIGINS: 'https://shop.example/checkout' }, 'ALLOWED_ORIGINS', 'is not an origin'],
    [{ ALLOWED_ORIGINS: 'shop.example' }, 'ALLOWED_ORIGINS', 'is not an origin'],
    [{ ALLOWED_ORIGINS: 'https://a.example, ftp://b.example' }, 'ALLOWED_ORIGINS', '"ftp://b.example" is not an origin'],
  ])('refuses %j, naming %s', (env, variable, message) => {
    const error = failure(env);
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(message);
  });

  it('never echoes the secret it refuses', () => {
    expect(failure({ AUTH_SECRET: 'hunter2' }).message).not.toContain('hunter2');
  });
});
