import { describe, expect, it } from 'vitest';
import { agent } from '../../test/support/agent-info.ts';
import { compareForAssignment, eligibleAgents, isEligible, nextAgent } from './routing.agents.ts';

describe('routing agent selection', () => {
  it('an agent is eligible only in the pool, available, and not yet tried', () => {
    expect(isEligible(agent('a'), 'support', [])).toBe(true);
    expect(isEligible(agent('a', { pools: ['sales'] }), 'support', [])).toBe(false);
    expect(isEligible(agent('a', { pools: ['sales', 'support'] }), 'support', [])).toBe(true);
    for (const status of ['away', 'offline', 'busy'] as const) {
      expect(isEligible(agent('a', { status }), 'support', [])).toBe(false);
    }
    expect(isEligible(agent('a'), 'support', ['a'])).toBe(false);
  });

  it('orders never-assigned agents first, then least recently assigned, ties by id', () => {
    const agents = [
      agent('d', { lastAssignedAt: 300 }),
      agent('c', { lastAssignedAt: 100 }),
      agent('b'),
      agent('e', { lastAssignedAt: 100 }),
      agent('a'),
    ];
    expect(eligibleAgents(agents, 'support', []).map((a) => a.id)).toEqual(['a', 'b', 'c', 'e', 'd']);
    expect([...agents].sort(compareForAssignment).map((a) => a.id)).toEqual(['a', 'b', 'c', 'e', 'd']);
  });

  it('the choice does not depend on the order the agents were listed in', () => {
    const agents = [agent('x', { lastAssignedAt: 5 }), agent('y', { lastAssignedAt: 5 }), agent('z', { lastAssignedAt: 1 })];
    expect(nextAgent(agents, 'support', [])?.id).toBe('z');
    expect(nextAgent([...agents].reverse(), 'support', [])?.id).toBe('z');
    expect(nextAgent(agents, 'support', ['z'])?.id).toBe('x');
    expect(nextAgent([...agents].reverse(), 'support', ['z'])?.id).toBe('x');
  });

  it('returns null when nobody is eligible', () => {
    expect(nextAgent([], 'support', [])).toBeNull();
    expect(nextAgent([agent('a', { status: 'busy' })], 'support', [])).toBeNull();
    expect(nextAgent([agent('a')], 'support', ['a'])).toBeNull();
  });
});
