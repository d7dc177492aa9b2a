/**
 * What a cluster benchmark runs on: one Postgres (Debian's, in a temporary directory) for the whole run and,
 * for each phase, a database of its own with the fleet's agents seeded into it and a Redis of its own, so
 * that no phase inherits another's requests, leases, presence or streams.
 */
import { randomBytes } from 'node:crypto';
import { hashPassword } from '@callchart/server/auth';
import { openStore } from '@callchart/server/store';
import { startPostgres, type PostgresInstance } from '../../../test/support/postgres.ts';
import { startRedis, type RedisServer } from '../../../test/support/redis.ts';
import type { FleetAgent } from '../fleet.ts';

export interface Backing {
  /** The cluster's databases, all on this instance. */
  readonly postgres: PostgresInstance;
  /** A new database holding `agents`, and a new empty Redis; `close()` stops that Redis. */
  phase(agents: readonly FleetAgent[]): Promise<Phase>;
  stop(): Promise<void>;
}

export interface Phase {
  databaseUrl: string;
  redis: RedisServer;
  /** The variables that make a node of this phase's cluster. */
  env: { DATABASE_URL: string; REDIS_URL: string };
  close(): Promise<void>;
}

export async function startBacking(): Promise<Backing> {
  const postgres = await startPostgres();
  // One hash shared by all, as the fleet's SQLite database has it: nobody logs in with these accounts.
  const passwordHash = await hashPassword(randomBytes(16).toString('base64url'));
  const redises = new Set<RedisServer>();
  return {
    postgres,
    async phase(agents) {
      const databaseUrl = await postgres.createDatabase();
      // Opening the store runs the migrations, as the first node would.
      const store = await openStore({ databasePath: ':memory:', databaseUrl });
      try {
        await store.agents.seed(agents.map((agent) => ({ ...agent, email: `${agent.id}@bench.invalid`, passwordHash })));
      } finally {
        await store.close();
      }
      const redis = await startRedis();
      redises.add(redis);
      return {
        databaseUrl,
        redis,
        env: { DATABASE_URL: databaseUrl, REDIS_URL: redis.url },
        async close() {
          redises.delete(redis);
          await redis.stop();
        },
      };
    },
    async stop() {
      for (const redis of redises) await redis.stop().catch(() => undefined);
      redises.clear();
      await postgres.stop();
    },
  };
}
