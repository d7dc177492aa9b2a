import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CALL_END_REASONS,
  CLIENT_EVENT_NAMES,
  MAX_CANDIDATE_BYTES,
  MAX_SDP_BYTES,
  PROTOCOL_ERROR_CODES,
  SERVER_EVENT_NAMES,
} from '@callchart/machines';

const docPath = path.resolve(import.meta.dirname, '../../docs/protocol.md');

describe('docs/protocol.md', async () => {
  const doc = await readFile(docPath, 'utf8');
  // Backquoted, so a name that only occurs inside a longer word does not count as documented.
  const mentions = (name: string) => doc.includes(`\`${name}\``);

  it.each(CLIENT_EVENT_NAMES)('documents the client event %s', (name) => {
    expect(mentions(name), `\`${name}\` is missing from docs/protocol.md`).toBe(true);
  });

  it.each(SERVER_EVENT_NAMES)('documents the server event %s', (name) => {
    expect(mentions(name), `\`${name}\` is missing from docs/protocol.md`).toBe(true);
  });

  it.each([...PROTOCOL_ERROR_CODES, ...CALL_END_REASONS])('documents the code %s', (code) => {
    expect(mentions(code), `\`${code}\` is missing from docs/protocol.md`).toBe(true);
  });

  it('states the size limits the schemas enforce', () => {
    expect(doc).toContain(`${MAX_SDP_BYTES} bytes of UTF-8`);
    expect(doc).toContain(`${MAX_CANDIDATE_BYTES} bytes of UTF-8`);
  });

  it('has a table row for every client event', () => {
    const rows = new Set([...doc.matchAll(/^\| `([a-zA-Z.]+)` \| (?:both|visitor|agent|call leg) \|/gm)].map((m) => m[1]));
    expect([...rows].sort()).toEqual([...CLIENT_EVENT_NAMES].sort());
  });
});
