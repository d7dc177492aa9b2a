/**
 * Several nodes, each with its own Redis connection, run random claims, releases, holds, assignments and
 * presence changes at once against one real Redis. Every script takes a number from one counter, so the
 * order Redis ran them in is known: replaying the operations in that order through a plain model of
 * presence (routing's own `eligibleAgents` picks who should be claimed) must give every answer Redis gave.
 */
import { compareForAssignment, eligibleAgents, type AgentInfo } from '@callchart/machines';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../../test/support/redis.ts';
import type { ChosenStatus } from '../presence.ts';
import { AgentClaims } from './agentClaims.ts';
import { createRedis, RedisKeys, whenReady } from './redis.ts';

const AGENTS = ['a', 'b', 'c', 'd', 'e'] as const;
const REQUESTS = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'] as const;
const POOLS = ['p', 'q'] as const;
const NODES = ['n1', 'n2', 'n3'] as const;

type Op =
  | { kind: 'online'; agent: string; chosen: ChosenStatus; last: number | null }
  | { kind: 'offline'; agent: string }
  | { kind: 'chosen'; agent: string; chosen: ChosenStatus }
  | { kind: 'forget'; agent: string }
  | { kind: 'hold'; agent: string; request: string }
  | { kind: 'claim'; pool: string; request: string; exclude: string[] }
  | { kind: 'release'; agent: string; request: string }
  | { kind: 'assigned'; agent: string; at: number };

type Answer = { agent: AgentInfo | null } | { held: boolean; reason?: string; agentId?: string } | { released: boolean } | null;

interface Done {
  node: string;
  op: Op;
  seq: number;
  answer: Answer;
}

const agent = fc.constantFrom(...AGENTS);
const request = fc.constantFrom(...REQUESTS);
const chosen = fc.constantFrom<ChosenStatus>('available', 'away');
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('online' as const), agent, chosen, last: fc.option(fc.nat(20), { nil: null }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('offline' as const), agent }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('chosen' as const), agent, chosen }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('forget' as const), agent }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('hold' as const), agent, request }) },
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant('claim' as const), pool: fc.constantFrom(...POOLS), request, exclude: fc.subarray([...AGENTS]) }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('release' as const), agent, request }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('assigned' as const), agent, at: fc.nat(20) }) },
);
/** A node's work: steps one after another, the few operations of a step sent at once. */
const nodeWork = fc.array(fc.array(op, { minLength: 1, maxLength: 3 }), { maxLength: 8 });
const scenario = fc.record({
  pools: fc.tuple(...AGENTS.map(() => fc.subarray([...POOLS], { minLength: 1 }))),
  work: fc.tuple(...NODES.map(() => nodeWork)),
});

// ---------------------------------------------------------------------------------------------
// The model: presence as plain data, changed the way the scripts are specified to change it.

interface ModelAgent {
  exists: boolean;
  name?: string;
  pools?: string[];
  chosen?: ChosenStatus;
  last?: number;
  held: string;
  nodes: Set<string>;
}

class Model {
  readonly agents = new Map<string, ModelAgent>();
  readonly requestAgent = new Map<string, string>();
  readonly members = new Map<string, Set<string>>(POOLS.map((pool) => [pool, new Set<string>()]));

  constructor(private readonly poolsOf: Record<string, string[]>) {}

  agent(id: string): ModelAgent {
    let found = this.agents.get(id);
    if (!found) this.agents.set(id, (found = { exists: false, held: '', nodes: new Set() }));
    return found;
  }

  /** As a view shows it: offline without a socket anywhere, then busy while held, then the chosen status. */
  status(a: ModelAgent): AgentInfo['status'] {
    if (a.nodes.size === 0) return 'offline';
    if (a.held !== '') return 'busy';
    return a.chosen === 'away' ? 'away' : 'available';
  }

  /** Every agent with the pools it is registered in, as routing sees them. */
  infos(): AgentInfo[] {
    return [...this.agents]
      .filter(([, a]) => a.exists)
      .map(([id, a]) => ({ id, name: a.name ?? '', pools: a.pools ?? [], status: this.status(a), lastAssignedAt: a.last ?? null }));
  }

  /** Who a claim should take: the first agent routing itself would ring. */
  bestFree(pool: string, exclude: string[]): AgentInfo | null {
    return eligibleAgents(this.infos(), pool, exclude)[0] ?? null;
  }

  describe(id: string, status: AgentInfo['status']): AgentInfo {
    const a = this.agent(id);
    return { id, name: a.name ?? '', pools: a.pools ?? [], status, lastAssignedAt: a.last ?? null };
  }

  snapshot(): string {
    return JSON.stringify({
      agents: [...this.agents]
        .filter(([, a]) => a.exists || a.nodes.size > 0)
        .map(([id, a]) => JSON.stringify([id, { ...a, nodes: [...a.nodes].sort() }]))
        .sort(),
      requests: [...this.requestAgent].sort(),
      members: [...this.members].map(([pool, set]) => [pool, [...set].sort()]),
    });
  }

  apply(node: string, op: Op): Answer {
    switch (op.kind) {
      case 'online': {
        const a = this.agent(op.agent);
        const pools = this.poolsOf[op.agent]!;
        for (const pool of a.pools ?? []) if (!pools.includes(pool)) this.members.get(pool)!.delete(op.agent);
        a.exists = true;
        a.name = op.agent.toUpperCase();
        a.pools = pools;
        a.chosen ??= op.chosen;
        if (op.last !== null && (a.last === undefined || op.last > a.last)) a.last = op.last;
        for (const pool of pools) this.members.get(pool)!.add(op.agent);
        a.nodes.add(node);
        return null;
      }
      case 'offline':
        this.agent(op.agent).nodes.delete(node);
        return null;
      case 'chosen': {
        const a = this.agent(op.agent);
        if (a.chosen !== op.chosen) {
          a.exists = true;
          a.chosen = op.chosen;
        }
        return null;
      }
      case 'forget': {
        const a = this.agent(op.agent);
        if (!a.exists) return null;
        for (const pool of a.pools ?? []) this.members.get(pool)!.delete(op.agent);
        if (a.held !== '' && this.requestAgent.get(a.held) === op.agent) this.requestAgent.delete(a.held);
        this.agents.delete(op.agent);
        return null;
      }
      case 'hold': {
        const a = this.agent(op.agent);
        if (a.held !== '' && a.held !== op.request) return { held: false, reason: 'busy' };
        const current = this.requestAgent.get(op.request);
        if (current !== undefined && current !== op.agent) return { held: false, reason: 'holding', agentId: current };
        if (a.held !== op.request) {
          a.exists = true;
          a.held = op.request;
          this.requestAgent.set(op.request, op.agent);
        }
        return { held: true };
      }
      case 'claim': {
        const current = this.requestAgent.get(op.request);
        if (current !== undefined) return { agent: this.describe(current, 'busy') };
        const best = this.bestFree(op.pool, op.exclude);
        if (!best) return { agent: null };
        this.agent(best.id).held = op.request;
        this.requestAgent.set(op.request, best.id);
        return { agent: this.describe(best.id, 'busy') };
      }
      case 'release': {
        const a = this.agent(op.agent);
        if (!a.exists || a.held !== op.request) return { released: false };
        a.held = '';
        if (this.requestAgent.get(op.request) === op.agent) this.requestAgent.delete(op.request);
        return { released: true };
      }
      case 'assigned': {
        const a = this.agent(op.agent);
        if (a.last !== undefined && a.last >= op.at) return null;
        a.exists = true;
        a.last = op.at;
        return null;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------

async function perform(claims: AgentClaims, poolsOf: Record<string, string[]>, node: string, op: Op): Promise<Done> {
  switch (op.kind) {
    case 'online': {
      const { seq } = await claims.online({ id: op.agent, name: op.agent.toUpperCase(), pools: poolsOf[op.agent]!, chosen: op.chosen, lastAssignedAt: op.last });
      return { node, op, seq, answer: null };
    }
    case 'offline':
      return { node, op, seq: (await claims.offline(op.agent)).seq, answer: null };
    case 'chosen':
      return { node, op, seq: (await claims.setChosen(op.agent, op.chosen)).seq, answer: null };
    case 'forget':
      return { node, op, seq: (await claims.forget(op.agent)).seq, answer: null };
    case 'hold': {
      const { seq, ...answer } = await claims.hold(op.agent, op.request);
      return { node, op, seq, answer };
    }
    case 'claim': {
      const { seq, agent } = await claims.claim(op.pool, op.request, op.exclude);
      return { node, op, seq, answer: { agent } };
    }
    case 'release': {
      const { seq, released } = await claims.release(op.agent, op.request);
      return { node, op, seq, answer: { released } };
    }
    case 'assigned':
      return { node, op, seq: (await claims.assigned(op.agent, op.at)).seq, answer: null };
  }
}

let redis: RedisServer;
let clients: Redis[] = [];

beforeAll(async () => {
  redis = await startRedis();
  clients = await Promise.all(
    NODES.map(async (nodeId) => {
      const client = createRedis({ url: redis.url, connectionName: nodeId });
      await whenReady(client);
      return client;
    }),
  );
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await redis?.stop();
});

describe('agent claims under concurrent nodes (property, real Redis)', () => {
  it('every answer is the one the model gives in the order Redis ran them: LRA claims, no double hold, no agent skipped', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ({ pools, work }) => {
        const keys = new RedisKeys(`claims-property-${process.pid}-${++run}:`);
        const poolsOf = Object.fromEntries(AGENTS.map((id, index) => [id, pools[index]!]));
        const nodes = NODES.map((nodeId, index) => new AgentClaims({ redis: clients[index]!, keys, nodeId }));
        const done: Done[] = [];
        await Promise.all(
          nodes.map(async (claims, index) => {
            for (const step of work[index]!) {
              done.push(...(await Promise.all(step.map((each) => perform(claims, poolsOf, NODES[index]!, each)))));
            }
          }),
        );
        done.sort((x, y) => x.seq - y.seq);
        expect(new Set(done.map((each) => each.seq)).size).toBe(done.length);

        const model = new Model(poolsOf);
        for (const { node, op, answer } of done) {
          const before = model.snapshot();
          if (op.kind === 'claim' && !model.requestAgent.has(op.request)) {
            const best = model.bestFree(op.pool, op.exclude);
            const claimed = (answer as { agent: AgentInfo | null }).agent;
            // Nobody free was passed over: a claim came back empty only when nobody eligible was free.
            if (claimed === null) expect(best, `claim ${JSON.stringify(op)} found nobody while ${best?.id} was free`).toBeNull();
            // And the one taken was the least recently assigned eligible agent at that moment.
            else expect(claimed.id, `claim ${JSON.stringify(op)}`).toBe(best?.id);
            // Never an agent another request holds.
            if (claimed) expect(model.agent(claimed.id).held).toBe('');
          }
          const expected = model.apply(node, op);
          expect(answer, `${node} ${JSON.stringify(op)}`).toEqual(expected);
          if (op.kind === 'release' && !(expected as { released: boolean }).released) expect(model.snapshot()).toBe(before);
        }

        // Redis ends where the model ends: holds, and every pool's view.
        const reader = nodes[0]!;
        for (const requestId of REQUESTS) {
          expect(await clients[0]!.get(keys.key('request-agent', requestId))).toBe(model.requestAgent.get(requestId) ?? null);
        }
        const holders = new Map<string, string>();
        for (const [requestId, agentId] of model.requestAgent) {
          expect(holders.has(agentId), `${agentId} held twice`).toBe(false);
          holders.set(agentId, requestId);
        }
        for (const pool of POOLS) {
          const view = await reader.view(pool);
          const expectedView = model
            .infos()
            .filter((info) => model.members.get(pool)!.has(info.id))
            .sort(compareForAssignment);
          expect(view.agents).toEqual(expectedView);
          const shortlist = await reader.shortlist(pool, [], 16);
          expect(shortlist.agents.map((each) => each.id)).toEqual(eligibleAgents(model.infos(), pool, []).map((each) => each.id));
        }
      }),
      { numRuns: 50 },
    );
  });
});
