import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryPresence } from './presence.ts';

type View = ReturnType<MemoryPresence['view']>;

/** The views before and after Ada is held for a request: the same view until the change, a fresh one after it. */
function viewsAroundHold(presence: MemoryPresence): [before: View, after: View] {
  const before = presence.view();
  expect(presence.view()).toBe(before);
  presence.hold('ada', 'req-1');
  const after = presence.view();
  expect(after).not.toBe(before);
  return [before, after];
}

describe('MemoryPresence', () => {
  it('reads an agent’s last assignment once, when it comes online, and keeps it in step after', () => {
    const reads: string[] = [];
    const presence = new MemoryPresence((agentId) => {
      reads.push(agentId);
      return agentId === 'ada' ? 100 : null;
    });
    presence.connect({ id: 'ada', name: 'Ada', pools: ['support'] });
    presence.connect({ id: 'grace', name: 'Grace', pools: ['support'] });
    presence.connect({ id: 'ada', name: 'Ada', pools: ['support'] });
    expect(presence.view().map((agent) => [agent.id, agent.lastAssignedAt])).toEqual([
      ['ada', 100],
      ['grace', null],
    ]);
    presence.assigned('grace', 200);
    presence.view();
    presence.view();
    expect(presence.view().find((agent) => agent.id === 'grace')?.lastAssignedAt).toBe(200);
    expect(reads).toEqual(['ada', 'grace']);
  });

  it('builds one view per change and a fresh one after any change', () => {
    const presence = new MemoryPresence(() => null);
    presence.connect({ id: 'ada', name: 'Ada', pools: ['support'] });
    const [, held] = viewsAroundHold(presence);
    expect(held[0]?.status).toBe('busy');
    presence.release('ada', 'req-1');
    presence.setChosen('ada', 'away');
    expect(presence.view()[0]?.status).toBe('away');
    presence.disconnect('ada');
    expect(presence.view()[0]?.status).toBe('offline');
  });

  it("rebuilds only the changed agent's entry: the others are the same objects as in the last view", () => {
    const presence = new MemoryPresence(() => null);
    presence.connect({ id: 'ada', name: 'Ada', pools: ['support'] });
    presence.connect({ id: 'grace', name: 'Grace', pools: ['support'] });
    const [before, after] = viewsAroundHold(presence);
    expect(after.find((a) => a.id === 'grace')).toBe(before.find((a) => a.id === 'grace'));
    expect(after.find((a) => a.id === 'ada')).toMatchObject({ status: 'busy' });
    expect(before.find((a) => a.id === 'ada')).toMatchObject({ status: 'available' });
    presence.release('ada', 'req-1');
    presence.assigned('ada', 42);
    expect(presence.view().find((a) => a.id === 'ada')).toMatchObject({ status: 'available', lastAssignedAt: 42 });
    presence.remove('grace');
    expect(presence.view().map((a) => a.id)).toEqual(['ada']);
  });

  it('keeps a view updated change by change equal to one built from scratch, whatever happens', () => {
    const agentIds = ['ada', 'grace', 'alan', 'edsger'];
    const op = fc.oneof(
      fc.record({ kind: fc.constant('connect' as const), agent: fc.constantFrom(...agentIds), socket: fc.constantFrom('s1', 's2') }),
      fc.record({ kind: fc.constant('disconnect' as const), agent: fc.constantFrom(...agentIds), socket: fc.constantFrom('s1', 's2') }),
      fc.record({ kind: fc.constant('remove' as const), agent: fc.constantFrom(...agentIds) }),
      fc.record({ kind: fc.constant('chosen' as const), agent: fc.constantFrom(...agentIds), status: fc.constantFrom('available' as const, 'away' as const) }),
      fc.record({ kind: fc.constant('hold' as const), agent: fc.constantFrom(...agentIds), request: fc.constantFrom('r1', 'r2') }),
      fc.record({ kind: fc.constant('release' as const), agent: fc.constantFrom(...agentIds), request: fc.constantFrom('r1', 'r2') }),
      fc.record({ kind: fc.constant('assigned' as const), agent: fc.constantFrom(...agentIds), at: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const watched = new MemoryPresence(() => null);
        const fresh = new MemoryPresence(() => null);
        for (const o of ops) {
          for (const presence of [watched, fresh]) {
            const agent = { id: o.agent, name: o.agent, pools: ['support'] };
            if (o.kind === 'connect') presence.connect(agent);
            else if (o.kind === 'disconnect') presence.disconnect(o.agent);
            else if (o.kind === 'remove') presence.remove(o.agent);
            else if (o.kind === 'chosen') presence.setChosen(o.agent, o.status);
            else if (o.kind === 'hold') presence.hold(o.agent, o.request);
            else if (o.kind === 'release') presence.release(o.agent, o.request);
            else presence.assigned(o.agent, o.at);
          }
          watched.view();
        }
        expect(watched.view()).toEqual(fresh.view());
      }),
      { numRuns: 300 },
    );
  });
});
