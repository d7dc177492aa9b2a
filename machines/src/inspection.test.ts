import { describe, expect, it } from 'vitest';
import { REDACTED, sanitize, sanitizeEvent } from './inspection.ts';

describe('sanitize', () => {
  it('redacts secrets and session descriptions at any depth, whatever the key case', () => {
    const clean = sanitize({
      type: 'signal.offer',
      sdp: 'v=0\r\n…',
      nested: { Token: 'abc', resumeToken: 'def', password: 'pw', candidate: { candidate: 'candidate:1 1 udp' } },
      iceServers: [{ urls: 'turn:example.org', username: 'u', credential: 'c' }],
      keep: 'visible',
    });
    expect(clean).toEqual({
      type: 'signal.offer',
      sdp: REDACTED,
      nested: { Token: REDACTED, resumeToken: REDACTED, password: REDACTED, candidate: REDACTED },
      iceServers: [{ urls: 'turn:example.org', username: 'u', credential: REDACTED }],
      keep: 'visible',
    });
  });

  it('leaves an absent secret absent rather than claiming one was there', () => {
    expect(sanitize({ token: null, sdp: undefined })).toEqual({ token: null });
  });

  it('caps strings at 200 characters and arrays at 50 items, saying how much was cut', () => {
    const clean = sanitize({ text: 'x'.repeat(1_000), list: Array.from({ length: 80 }, (_, i) => i) }) as { text: string; list: unknown[] };
    expect(clean.text).toBe(`${'x'.repeat(200)}…`);
    expect(clean.list).toHaveLength(51);
    expect(clean.list.at(49)).toBe(49);
    expect(clean.list.at(-1)).toBe('[+30 more]');
  });

  it('bounds nesting, so a cyclic or hostile value cannot run away', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    expect(JSON.stringify(sanitize(cyclic))).toContain('[too deep]');
  });

  it('keeps plain JSON as it is and drops what JSON cannot hold', () => {
    expect(sanitize({ a: 1, b: [true, null, 'x'], c: { d: 'e' } })).toEqual({ a: 1, b: [true, null, 'x'], c: { d: 'e' } });
    expect(sanitize({ f: () => 1, s: Symbol('x'), n: 10n })).toEqual({ n: '10' });
  });

  it('redacts the fields of an event but keeps its type', () => {
    expect(sanitizeEvent({ type: 'ice.failed', sdp: 'v=0' } as { type: string })).toEqual({ type: 'ice.failed', sdp: REDACTED });
  });
});
