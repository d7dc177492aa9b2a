/**
 * The cluster support itself, on real processes: Postgres, Redis, node processes and haproxy. What the
 * nodes do together as a cluster is the integration and fault suites' business; this checks that the
 * harness starts, kills, restarts and stops them as it says.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, startNodes, type Cluster } from './cluster.ts';
import { agentToken, getJson } from './server.ts';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2, balancer: true });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('a cluster of node processes behind haproxy', () => {
  it('starts every node ready, on its own port, with its own NODE_ID, in cluster mode', async () => {
    expect(cluster.nodes.map((node) => node.nodeId)).toEqual(['node-1.1', 'node-2.1']);
    expect(new Set(cluster.nodes.map((node) => node.port)).size).toBe(2);
    for (const node of cluster.nodes) {
      expect((await fetch(`${cluster.urlOf(node)}/readyz`)).status).toBe(200);
      expect(cluster.logs(node)).toContain('callchart server listening');
      // The shared database, not a SQLite file of its own.
      expect(cluster.logs(node)).toContain(`"engine":"postgres"`);
    }
    expect((await fetch(`${cluster.url}/readyz`)).status).toBe(200);
  });

  it('shares one secret and one store: a login on one node is good on the other', async () => {
    const [first, second] = cluster.nodes;
    const token = await agentToken(cluster.urlOf(first!), 'ada');
    expect((await getJson(`${cluster.urlOf(second!)}/api/calls`, token)).status).toBe(200);
  });

  it('kills a node, keeps serving through the balancer, and restarts the node with a new NODE_ID', async () => {
    const [first, second] = cluster.nodes;
    await cluster.kill(second!, 'SIGKILL');
    expect(second!.running).toBe(false);
    expect(second!.child.signalCode).toBe('SIGKILL');
    await cluster.balancer!.waitForBackends([first!.name]);
    for (let i = 0; i < 4; i += 1) expect((await fetch(`${cluster.url}/readyz`)).status).toBe(200);

    await cluster.restart(second!);
    expect(second!.nodeId).toBe('node-2.2');
    await cluster.balancer!.waitForBackends([first!.name, second!.name]);
    expect(cluster.logs(second!).match(/callchart server listening/g)).toHaveLength(2);
  });

  it('lets a node stop cleanly on SIGTERM', async () => {
    const [first] = cluster.nodes;
    await cluster.kill(first!, 'SIGTERM');
    expect(first!.child.exitCode).toBe(0);
    expect(cluster.logs(first!)).toContain('shutting down');
    await cluster.restart(first!);
    expect(first!.running).toBe(true);
  });

  it('reports a node that refuses its configuration with the message the node gave', async () => {
    const attempt = startNodes({ databaseUrl: cluster.postgres.url, redisUrl: cluster.redis.url, count: 1, env: { LEASE_RENEW_MS: '5000' } });
    await expect(attempt).rejects.toThrow(/node-1 \(node-1\.1\) exited \(2\) before it was ready:[\s\S]*LEASE_RENEW_MS must be less than half of LEASE_TTL_MS/);
  });

  it.each([0, 17, 1.5])('refuses a cluster of %s nodes', async (count) => {
    await expect(startNodes({ databaseUrl: cluster.postgres.url, redisUrl: cluster.redis.url, count })).rejects.toThrow('a cluster has 1 to 16 nodes');
  });
});

describe('stopping a cluster', () => {
  it('stops every part and removes every directory it made', async () => {
    const small = await startCluster({ nodes: 1, balancer: true });
    const dirs = [small.dir, small.balancer!.dir];
    const [node] = small.nodes;
    await small.stop();
    expect(node!.running).toBe(false);
    expect(small.redis.running).toBe(false);
    for (const dir of dirs) expect(existsSync(dir)).toBe(false);
    await expect(fetch(`${small.url}/readyz`)).rejects.toThrow();
    await expect(fetch(`${small.urlOf(node!)}/readyz`)).rejects.toThrow();
  }, 120_000);
});
