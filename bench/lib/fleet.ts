/**
 * Many agents for the load benchmarks, without the cost of hashing thousands of passwords: the accounts are
 * written into the database before the server starts (the agents file, which the server seeds at every
 * start, then names only the one account a person would log in with, and accounts missing from it are
 * kept), and their tokens are signed here with the server's own `AUTH_SECRET`, as its login would sign them.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createAuth, hashPassword } from '@callchart/server/auth';
import { openStore } from '@callchart/server/store';
import { LOOPBACK_CROWD } from '../../test/support/server.ts';

export interface FleetAgent {
  id: string;
  name: string;
  pools: string[];
  roles: string[];
}

export interface Fleet {
  databasePath: string;
  agentsFile: string;
  /** The server env that points it at this fleet's database, agents file and secret. */
  env: Record<string, string>;
  agents: FleetAgent[];
  /** A signed agent token, exactly what `POST /api/agents/login` would hand out. */
  agentToken(agent: FleetAgent): Promise<string>;
  /** A signed visitor token, as `POST /api/visitors/session` would hand out. */
  visitorToken(visitorId: string, name?: string): Promise<string>;
}

export const fleetAgentId = (i: number) => `agent-${String(i).padStart(5, '0')}`;

/** `count` agents in pool `support` (ids `agent-00000`, …) in a fresh database under `dir`. */
export async function prepareFleet(dir: string, count: number, { pool = 'support' }: { pool?: string } = {}): Promise<Fleet> {
  const databasePath = path.join(dir, 'bench.db');
  const agentsFile = path.join(dir, 'agents.json');
  const secret = randomBytes(32).toString('base64url');
  // One hash shared by all: nobody logs in with these accounts, the tokens below stand for their logins.
  const passwordHash = await hashPassword(randomBytes(16).toString('base64url'));
  const agents: FleetAgent[] = Array.from({ length: count }, (_, i) => ({ id: fleetAgentId(i), name: `Agent ${i}`, pools: [pool], roles: ['agent'] }));
  const store = await openStore({ databasePath });
  try {
    await store.agents.seed(agents.map((agent) => ({ ...agent, email: `${agent.id}@bench.invalid`, passwordHash })));
  } finally {
    await store.close();
  }
  const inspector = { id: 'bench-inspector', name: 'Bench Inspector', email: 'inspector@bench.invalid', password: randomBytes(12).toString('base64url'), pools: [], roles: ['inspector'] };
  writeFileSync(agentsFile, JSON.stringify([inspector]));
  const auth = createAuth({ secret, agentTtlSeconds: 86_400, visitorTtlSeconds: 86_400 });
  return {
    databasePath,
    agentsFile,
    // Thousands of people on one loopback address are a crowd, not one abuser; and a bench agent answers
    // rings far faster than a person, which the per-socket event bucket would refuse as a flood.
    env: {
      DATABASE_PATH: databasePath,
      AGENTS_FILE: agentsFile,
      AUTH_SECRET: secret,
      ...LOOPBACK_CROWD,
      LIMIT_SOCKET_EVENTS_PER_SECOND: '100000',
      LIMIT_SOCKET_EVENT_BURST: '100000',
    },
    agents,
    agentToken: async (agent) => (await auth.issueAgentToken(agent)).token,
    visitorToken: async (visitorId, name = 'Bench Visitor') => (await auth.issueVisitorToken({ visitorId, name })).token,
  };
}
