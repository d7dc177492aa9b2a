import { describe, expect, it } from 'vitest';
import { Connections } from './connections.ts';
import { ResumeSessions } from './resume.ts';

const SECRET = 'resume-test-secret-of-some-length';

describe('ResumeSessions', () => {
  it('after a restart, counts the window from when the server opened, not from when it was constructed', async () => {
    let now = 1_000_000;
    const connections = new Connections({ windowMs: 1_000, now: () => now });
    const sessions = new ResumeSessions(SECRET, connections, () => now);
    const token = await sessions.issue('visitor:v1');
    // A slow restore: the process was built long before it could take a connection.
    now += 5_000;
    connections.open();
    now += 900;
    connections.connected({ kind: 'visitor', id: 'v1' }, 's1');
    expect(await sessions.canResume(token, 'visitor:v1')).toBe(true);
    now += 200;
    expect(await sessions.canResume(token, 'visitor:v1')).toBe(false);
  });

  it('counts from the last socket dropping once the person has been connected to this process', async () => {
    let now = 0;
    const connections = new Connections({ windowMs: 1_000, now: () => now });
    const sessions = new ResumeSessions(SECRET, connections, () => now);
    connections.open();
    const ada = { kind: 'agent', id: 'ada' } as const;
    const token = await sessions.issue('agent:ada');
    connections.connected(ada, 's1');
    now += 10_000;
    expect(connections.disconnected(ada, 's1')).toBe(true);
    now += 999;
    connections.connected(ada, 's2');
    expect(await sessions.canResume(token, 'agent:ada')).toBe(true);
    connections.disconnected(ada, 's2');
    now += 1_001;
    connections.connected(ada, 's3');
    expect(await sessions.canResume(token, 'agent:ada')).toBe(false);
  });

  it('refuses a token for someone else, or signed with another secret', async () => {
    const connections = new Connections({ windowMs: 60_000 });
    connections.open();
    const sessions = new ResumeSessions(SECRET, connections);
    const other = new ResumeSessions('another-secret-entirely-0123456789', connections);
    expect(await sessions.canResume(await sessions.issue('visitor:v1'), 'visitor:v2')).toBe(false);
    expect(await sessions.canResume(await other.issue('visitor:v1'), 'visitor:v1')).toBe(false);
    expect(await sessions.canResume('not-a-token', 'visitor:v1')).toBe(false);
  });
});
