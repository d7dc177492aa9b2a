import { describe, expect, it } from 'vitest';
import { REDACTED, createSharingSanitizer, sanitize, sanitizeEvent } from './inspection.ts';

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

  it('redacts the other credential keys, whatever their case', () => {
    const clean = sanitize({
      accessToken: 'a',
      ACCESS_TOKEN: 'b',
      apiKey: 'c',
      Cookie: 'session=d',
      JWT: 'e',
      nested: { Secret: 'f', PassWord: 'g', authSecret: 'h', refresh_token: 'i' },
      tokens: 3,
    });
    expect(clean).toEqual({
      accessToken: REDACTED,
      ACCESS_TOKEN: REDACTED,
      apiKey: REDACTED,
      Cookie: REDACTED,
      JWT: REDACTED,
      nested: { Secret: REDACTED, PassWord: REDACTED, authSecret: REDACTED, refresh_token: REDACTED },
      tokens: 3,
    });
  });

  it('redacts anything shaped like a JWT by its value, under any key and inside longer text', () => {
    const header = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9';
    const jwt = `${header}.eyJzdWIiOiJhZGEiLCJyb2xlIjoiYWdlbnQifQ.c2lnbmF0dXJlLWJ5dGVz_-0`;
    const unsigned = `${header}.eyJzdWIiOiJhZGEifQ.`;
    const clean = sanitize({
      note: `Bearer ${jwt}`,
      list: [jwt, 'eyJ but not a token', 'a.b.c'],
      who: { id: unsigned },
      [jwt]: 'under a key',
      // A token longer than the cap is redacted whole, not cut to a still readable header and payload.
      long: `${'x'.repeat(180)} ${header}.${'A'.repeat(300)}.sig`,
    });
    expect(clean).toEqual({
      note: `Bearer ${REDACTED}`,
      list: [REDACTED, 'eyJ but not a token', 'a.b.c'],
      who: { id: REDACTED },
      [REDACTED]: 'under a key',
      long: `${'x'.repeat(180)} ${REDACTED}`,
    });
    expect(JSON.stringify(clean)).not.toContain(header);
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

describe('createSharingSanitizer', () => {
  const agents = [
    { id: 'ada', status: 'available', token: 'secret' },
    { id: 'grace', status: 'away' },
  ];
  const before = { requestId: 'r1', agents, tried: ['alan'] };
  // What XState's assign makes of a change: a new context object sharing every part the event left alone.
  const after = { ...before, tried: ['alan', 'ada'] };

  it('makes the same copy as sanitize', () => {
    const share = createSharingSanitizer();
    expect(share(before)).toEqual(sanitize(before));
    expect(share(after)).toEqual(sanitize(after));
    expect(share(after)).toMatchObject({ agents: [{ token: REDACTED }, { id: 'grace' }] });
  });

  it('reuses the copy of a part that did not change, and copies what did', () => {
    const share = createSharingSanitizer();
    const first = share(before) as typeof before;
    const second = share(after) as typeof after;
    expect(second).not.toBe(first);
    expect(second.agents).toBe(first.agents);
    expect(second.tried).not.toBe(first.tried);
    // An event carrying the list the context took in shares it as well.
    expect((share({ type: 'agents.updated', agents }) as typeof before).agents).toBe(first.agents);
  });

  it('does not reuse a copy made at another depth, where the depth cap cuts differently', () => {
    const share = createSharingSanitizer();
    let deep: unknown = { leaf: true };
    for (let i = 0; i < 6; i++) deep = { next: deep };
    const shallow = share(deep);
    const nested = share({ a: { b: { c: deep } } });
    expect(shallow).toEqual(sanitize(deep));
    expect(nested).toEqual(sanitize({ a: { b: { c: deep } } }));
  });
});
