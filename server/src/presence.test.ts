import { describe, expect, it } from 'vitest';
import { Presence } from './presence.ts';

describe('Presence', () => {
  it('reads an agent’s last assignment once, when it comes online, and keeps it in step after', () => {
    const reads: string[] = [];
    const presence = new Presence((agentId) => {
      reads.push(agentId);
      return agentId === 'ada' ? 100 : null;
    });
    presence.connect({ id: 'ada', name: 'Ada', pools: ['support'] }, 's1');
    presence.connect({ id: 'grace', name: 'Grace', pools: ['support'] }, 's2');
    presence.connect({ id: 'ada', name: 'Ada', pools: ['support'] }, 's3');
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
    const presence = new Presence(() => null);
    presence.connect({ id: 'ada', name: 'Ada', pools: ['support'] }, 's1');
    const first = presence.view();
    expect(presence.view()).toBe(first);
    presence.hold('ada', 'req-1');
    const held = presence.view();
    expect(held).not.toBe(first);
    expect(held[0]?.status).toBe('busy');
    presence.release('ada', 'req-1');
    presence.setChosen('ada', 'away');
    expect(presence.view()[0]?.status).toBe('away');
    presence.disconnect('ada', 's1');
    expect(presence.view()[0]?.status).toBe('offline');
  });
});
