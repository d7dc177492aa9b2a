import { describe, expect, it } from 'vitest';
import { ResumeSessions } from './resume.ts';

const SECRET = 'resume-test-secret-of-some-length';

describe('ResumeSessions', () => {
  it('after a restart, counts the window from when the server opened, not from when it was constructed', async () => {
    let now = 1_000_000;
    const sessions = new ResumeSessions(SECRET, 1_000, () => now);
    const token = await sessions.issue('visitor:v1');
    // A slow restore: the process was built long before it could take a connection.
    now += 5_000;
    sessions.open();
    now += 900;
    sessions.connected('visitor:v1');
    expect(await sessions.canResume(token, 'visitor:v1')).toBe(true);
    now += 200;
    expect(await sessions.canResume(token, 'visitor:v1')).toBe(false);
  });

  it('counts from the last socket dropping once the person has been connected to this process', async () => {
    let now = 0;
    const sessions = new ResumeSessions(SECRET, 1_000, () => now);
    sessions.open();
    const token = await sessions.issue('agent:ada');
    sessions.connected('agent:ada');
    now += 10_000;
    expect(sessions.disconnected('agent:ada')).toBe(true);
    now += 999;
    sessions.connected('agent:ada');
    expect(await sessions.canResume(token, 'agent:ada')).toBe(true);
    sessions.disconnected('agent:ada');
    now += 1_001;
    sessions.connected('agent:ada');
    expect(await sessions.canResume(token, 'agent:ada')).toBe(false);
  });

  it('refuses a token for someone else, or signed with another secret', async () => {
    const sessions = new ResumeSessions(SECRET, 60_000);
    sessions.open();
    const other = new ResumeSessions('another-secret-entirely-0123456789', 60_000);
    expect(await sessions.canResume(await sessions.issue('visitor:v1'), 'visitor:v2')).toBe(false);
    expect(await sessions.canResume(await other.issue('visitor:v1'), 'visitor:v1')).toBe(false);
    expect(await sessions.canResume('not-a-token', 'visitor:v1')).toBe(false);
  });
});
