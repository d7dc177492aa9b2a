/**
 * Reading the cluster's shared state from outside its nodes, to check what a figure claims: which live calls
 * have their two people on different nodes (the store's `calls` rows), and which node holds a request's
 * lease (Redis, `lease:<requestId>` holding `<nodeId>:<token>`). Read only: the bench never writes there.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { RedisKeys } from '@callchart/server/cluster/redis';
import type { PlaceOf, Placement } from './ladder.ts';

/** How many live calls there are, and how many of them join people connected to different nodes. */
export async function callPlacement(databaseUrl: string, placeOf: PlaceOf): Promise<Placement> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ agent_id: string; visitor_id: string }>('SELECT agent_id, visitor_id FROM calls WHERE ended_at IS NULL');
    const crossNode = rows.filter((row) => {
      const agent = placeOf.agent.get(row.agent_id);
      const visitor = placeOf.visitor.get(row.visitor_id);
      return agent !== undefined && visitor !== undefined && agent !== visitor;
    }).length;
    return { liveCalls: rows.length, crossNode };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The node id holding each request's lease now, or null where no lease is held. */
export async function leaseHolders(redisUrl: string, requestIds: readonly string[]): Promise<Map<string, string | null>> {
  const keys = new RedisKeys();
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5_000 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const values = requestIds.length === 0 ? [] : await redis.mget(requestIds.map((id) => keys.key('lease', id)));
    // A node id has no colon; the token comes after the last one.
    return new Map(requestIds.map((id, i) => [id, values[i] ? values[i].slice(0, values[i].lastIndexOf(':')) : null]));
  } finally {
    redis.disconnect();
  }
}
