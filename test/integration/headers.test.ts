/**
 * The security headers a real server sends: the server's own pages (the demo host page, the dashboard and
 * the inspector) carry a strict Content-Security-Policy and may not be framed; the widget's files and the
 * API, which other sites embed and call, carry no framing headers; every response says `nosniff` and a
 * referrer policy.
 */
import { describe, expect, it } from 'vitest';
import { suiteServer } from '../support/suite-server.ts';

/** The policy's directives by name, each with its sources. */
function directives(policy: string | null): Map<string, string[]> {
  const parsed = new Map<string, string[]>();
  for (const part of (policy ?? '').split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) parsed.set(name.toLowerCase(), sources);
  }
  return parsed;
}

const PAGES = [
  { path: '/', what: 'the demo host page' },
  { path: '/agent', what: 'the dashboard' },
  { path: '/agent/', what: 'the dashboard, with the trailing slash' },
  { path: '/inspect', what: 'the inspector' },
];

describe('security headers', () => {
  const server = suiteServer();

  it.each(PAGES)('$what ($path) has a strict CSP and may not be framed', async ({ path }) => {
    const response = await fetch(`${server.url}${path}`);
    expect(response.status).toBe(200);
    const csp = directives(response.headers.get('content-security-policy'));
    expect(csp.get('default-src')).toEqual(["'self'"]);
    // Scripts only from this origin: no inline script, no eval, no other host.
    expect(csp.get('script-src')).toEqual(["'self'"]);
    expect(csp.get('script-src-attr')).not.toContain("'unsafe-inline'");
    expect(csp.get('object-src')).toEqual(["'none'"]);
    expect(csp.get('base-uri')).toEqual(["'none'"]);
    expect(csp.get('connect-src')).toEqual(["'self'"]);
    expect(csp.get('media-src')).toEqual(["'self'", 'blob:']);
    expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(response.headers.get('x-powered-by')).toBeNull();
  });

  it('lets the demo page keep its one inline handler by hash, and the dashboard and the inspector none at all', async () => {
    const demo = directives((await fetch(`${server.url}/`)).headers.get('content-security-policy'));
    expect(demo.get('script-src-attr')).toEqual(["'unsafe-hashes'", expect.stringMatching(/^'sha256-[A-Za-z0-9+/]+=*'$/)]);
    for (const path of ['/agent', '/inspect']) {
      const app = directives((await fetch(`${server.url}${path}`)).headers.get('content-security-policy'));
      expect(app.get('script-src-attr')).toEqual(["'none'"]);
    }
  });

  it('leaves the widget embeddable by any site, and its files still say nosniff', async () => {
    const loader = await fetch(`${server.url}/widget.js`);
    expect(loader.status).toBe(200);
    const entry = /["'`]\.?\/?(widget\/assets\/[^"'`]+\.js)["'`]/.exec(await loader.text())?.[1];
    expect(entry).toBeDefined();
    const module = await fetch(`${server.url}/${entry!}`);
    expect(module.status).toBe(200);
    for (const response of [loader, module]) {
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      expect(response.headers.get('x-frame-options')).toBeNull();
      expect(response.headers.get('content-security-policy')).toBeNull();
      expect(response.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
    }
  });

  it('answers the API, success and error alike, with nosniff and no framing or resource policy', async () => {
    const ok = await fetch(`${server.url}/api/openapi.json`);
    const refused = await fetch(`${server.url}/api/calls`);
    const session = await fetch(`${server.url}/api/visitor-session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://localhost:5173' },
      body: '{}',
    });
    expect([ok.status, refused.status, session.status]).toEqual([200, 401, 201]);
    for (const response of [ok, refused, session, await fetch(`${server.url}/healthz`)]) {
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      expect(response.headers.get('x-frame-options')).toBeNull();
      expect(response.headers.get('cross-origin-resource-policy')).toBeNull();
    }
    expect(session.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
  });
});
