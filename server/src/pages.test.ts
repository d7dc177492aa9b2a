import vm from 'node:vm';
/**
 * The pages the composed server serves: the demo host page, the widget bundle it embeds with exactly
 * one script tag, and the dashboard and the inspector with their assets. The builds come from vitest's
 * globalSetup.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get, type IncomingHttpHeaders } from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { suiteServer } from '../../test/support/suite-server.ts';
import { defaultPagePaths, mountPages } from './pages.ts';

// A sanity bound, not a budget: React, socket.io-client, zod and the machines, minified.
const WIDGET_MAX_BYTES = 1_500_000;
const LOADER_MAX_BYTES = 2_048;

describe('pages served by the server', () => {
  const server = suiteServer();

  it('serves the demo host page at /, embedding the widget with one script tag', async () => {
    const response = await fetch(`${server.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await response.text();
    const scripts = html.match(/<script\b[^>]*>/gi) ?? [];
    expect(scripts).toEqual(['<script src="/widget.js" data-pool="support" defer>']);
    expect(html).not.toMatch(/<link[^>]+stylesheet[^>]+widget/i);
  });

  it('serves the widget loader as one small classic script that imports the widget module, CSS inside, from beside it', async () => {
    const response = await fetch(`${server.url}/widget.js`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^(text|application)\/javascript/);
    const loader = await response.text();
    // A classic script: compiling it as one fails on any static import or export an ES module would have.
    expect(() => new vm.Script(loader, { filename: 'widget.js' })).not.toThrow();
    expect(Buffer.byteLength(loader)).toBeLessThan(LOADER_MAX_BYTES);
    const entry = /"(widget\/assets\/widget-[\w-]+\.js)"/.exec(loader)?.[1];
    expect(entry, 'the loader names the widget module').toBeDefined();

    const modules = await fetchModuleGraph(`${server.url}/${entry}`);
    const body = [...modules.values()].join('\n');
    expect(body).toContain('callchart-widget');
    expect(body).toContain('.panel');
    // React's production build: a build made under NODE_ENV=test would ship the development runtime.
    expect(body).not.toContain('jsxDEV');
    const bytes = Buffer.byteLength(body);
    console.log(`widget modules before a call: ${modules.size}, ${(bytes / 1024).toFixed(1)} KiB`);
    expect(bytes).toBeLessThan(WIDGET_MAX_BYTES);
  });

  it('serves the widget modules to other origins: CORS-readable, embeddable, immutable', async () => {
    const loader = await (await fetch(`${server.url}/widget.js`)).text();
    const entry = /"(widget\/assets\/widget-[\w-]+\.js)"/.exec(loader)?.[1];
    const response = await fetch(`${server.url}/${entry}`, { headers: { origin: 'https://shop.example' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await fetch(`${server.url}/widget/assets/missing.js`)).status).toBe(404);
    expect((await fetch(`${server.url}/widget/assets/..%2Fwidget.js`)).status).toBe(404);
  });

  for (const [name, route, title] of [
    ['dashboard', '/agent', /Agent dashboard/],
    ['inspector', '/inspect', /Inspector/],
  ] as const) {
    it(`serves the ${name} at ${route} and ${route}/, and the assets it refers to`, async () => {
      for (const path of [route, `${route}/`]) {
        const response = await fetch(`${server.url}${path}`, { redirect: 'manual' });
        expect(response.status, path).toBe(200);
        expect(response.headers.get('content-type')).toMatch(/^text\/html/);
        expect(response.headers.get('cache-control'), path).toBe('no-cache');
      }
      const html = await (await fetch(`${server.url}${route}`)).text();
      expect(html).toMatch(new RegExp(`<title>[^<]*${title.source}`));
      const assets = [...html.matchAll(new RegExp(`(?:src|href)="(${route}/assets/[^"]+)"`, 'g'))].map((match) => match[1]);
      expect(assets.some((asset) => asset?.endsWith('.js'))).toBe(true);
      expect(assets.some((asset) => asset?.endsWith('.css'))).toBe(true);
      for (const asset of assets) {
        const response = await fetch(`${server.url}${asset}`);
        expect(response.status, asset).toBe(200);
        expect(response.headers.get('content-type')).toMatch(asset?.endsWith('.css') ? /^text\/css/ : /javascript/);
        expect(response.headers.get('cache-control'), asset).toMatch(/immutable/);
      }
    });
  }

  it('serves the inspector’s lazily loaded chart layout from its assets', async () => {
    const html = await (await fetch(`${server.url}/inspect`)).text();
    const entry = /src="(\/inspect\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(entry).toBeDefined();
    const script = await (await fetch(`${server.url}${entry}`)).text();
    // The entry names its dynamic chunks relative to itself; each must be served too.
    const chunks = [...script.matchAll(/["'`]\.\/([\w-]+\.js)["'`]/g)].map((match) => match[1]);
    expect(chunks.some((chunk) => chunk?.startsWith('layout-'))).toBe(true);
    for (const chunk of chunks) expect((await fetch(`${server.url}/inspect/assets/${chunk}`)).status, chunk).toBe(200);
  });

  it('leaves /api and unknown asset paths alone', async () => {
    expect((await fetch(`${server.url}/api/nothing`)).headers.get('content-type')).toMatch(/^application\/json/);
    expect((await fetch(`${server.url}/agent/assets/missing.js`)).status).toBe(404);
    expect((await fetch(`${server.url}/inspect/assets/missing.js`)).status).toBe(404);
  });
});

/** One request as a browser would make it, without the transparent decompression of fetch. */
function raw(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(url, { headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

describe('delivery as a browser or a CDN expects it', () => {
  const server = suiteServer();

  it('serves the widget loader compressed by Accept-Encoding, fresh for minutes, and revalidated with a 304', async () => {
    const identity = await raw(`${server.url}/widget.js`);
    expect(identity.status).toBe(200);
    expect(identity.headers['content-encoding']).toBeUndefined();
    expect(identity.body).toEqual(readFileSync(path.join(defaultPagePaths.widgetDist, 'widget.js')));

    const br = await raw(`${server.url}/widget.js`, { 'accept-encoding': 'br, gzip' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers['content-type']).toMatch(/javascript/);
    expect(br.headers.vary).toMatch(/Accept-Encoding/i);
    expect(br.headers['cache-control']).toBe('public, max-age=300');
    expect(brotliDecompressSync(br.body)).toEqual(identity.body);
    console.log(`widget.js on the wire: ${identity.body.byteLength} bytes identity, ${br.body.byteLength} brotli`);
    expect(br.body.byteLength).toBeLessThan(identity.body.byteLength);

    const gz = await raw(`${server.url}/widget.js`, { 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body)).toEqual(identity.body);

    const etag = br.headers.etag;
    expect(etag).toBeDefined();
    const again = await raw(`${server.url}/widget.js`, { 'accept-encoding': 'br, gzip', 'if-none-match': etag! });
    expect(again.status).toBe(304);
    expect(again.body.byteLength).toBe(0);
  });

  it('serves hashed assets compressed and immutable, and never a variant asked for by name', async () => {
    const html = await (await fetch(`${server.url}/agent`)).text();
    const asset = /src="(\/agent\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    const response = await raw(`${server.url}${asset}`, { 'accept-encoding': 'gzip, br' });
    expect(response.headers['content-encoding']).toBe('br');
    expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect((await raw(`${server.url}${asset}.br`)).status).toBe(404);
  });
});

describe('pages without a build', () => {
  let dir: string;
  let http: Server;
  let base: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'callchart-pages-'));
    const app = express();
    mountPages(app, {
      hostPage: defaultPagePaths.hostPage,
      widgetDist: path.join(dir, 'widget'),
      dashboardDist: path.join(dir, 'dashboard'),
      inspectorDist: path.join(dir, 'inspector'),
    });
    http = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => http.once('listening', resolve));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => http.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 with how to build, instead of a bare 404', async () => {
    for (const route of ['/widget.js', '/agent', '/inspect', '/inspect/']) {
      const response = await fetch(`${base}${route}`);
      expect(response.status, route).toBe(503);
      expect(await response.text()).toContain('npm run build');
    }
  });
});

/** The module at `url` and every module it imports statically, by URL: what a browser loads before any dynamic import. */
async function fetchModuleGraph(url: string, seen = new Map<string, string>()): Promise<Map<string, string>> {
  if (seen.has(url)) return seen;
  const response = await fetch(url);
  expect(response.status, url).toBe(200);
  const source = await response.text();
  seen.set(url, source);
  for (const match of source.matchAll(/(?:^|[;\s}])import\s*(?:[\w$*{},\s]+from\s*)?["'](\.\/[\w.-]+\.js)["']/g)) {
    await fetchModuleGraph(new URL(match[1]!, url).href, seen);
  }
  return seen;
}
