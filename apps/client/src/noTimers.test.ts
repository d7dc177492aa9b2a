/**
 * Every timing belongs to the machines (DESIGN §1, §7): backoff, grace periods and attempt timeouts are
 * named delays there, so the adapters and the facades built on them must not keep a clock of their own.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const here = import.meta.dirname;
const sources = readdirSync(here).filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'));

describe('the client keeps no timers', () => {
  it.each(['peerConnection.adapter.ts', 'signaling.adapter.ts'])('%s exists and is checked', (file) => {
    expect(sources).toContain(file);
  });

  it.each(sources)('%s uses no setTimeout or setInterval', (file) => {
    const code = readFileSync(path.join(here, file), 'utf8');
    expect(code).not.toMatch(/\bset(Timeout|Interval)\b/);
  });
});
