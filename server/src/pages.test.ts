/**
 * The pages the composed server serves: the demo host page, the widget bundle it embeds with exactly
 * one script tag, and the dashboard with its assets. The builds come from vitest's globalSetup.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../test/support/server.ts';
import { defaultPagePaths, mountPages } from './pages.ts';

// A sanity bound, not a budget: React, socket.io-client, zod and the machines, minified.
const WIDGET_MAX_BYTES = 1_500_000;

describe('pages served by the server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('serves the demo host page at /, embedding the widget with one script tag', async () => {
    const response = await fetch(`${server.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await response.text();
    const scripts = html.match(/<script\b[^>]*>/gi) ?? [];
    expect(scripts).toEqual(['<script src="/widget.js" data-pool="support" defer>']);
    expect(html).not.toMatch(/<link[^>]+stylesheet[^>]+widget/i);
  });

  it('serves the widget as one classic script with its CSS inside', async () => {
    const response = await fetch(`${server.url}/widget.js`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^(text|application)\/javascript/);
    const body = await response.text();
    // A classic script: an ES module's import/export would be a syntax error in a plain <script>.
    expect(body).not.toMatch(/^\s*(import|export)\s/m);
    expect(body).toContain('callchart-widget');
    expect(body).toContain('.panel');
    // React's production build: a build made under NODE_ENV=test would ship the development runtime.
    expect(body).not.toContain('jsxDEV');
    const bytes = Buffer.byteLength(body);
    console.log(`widget.js: ${(bytes / 1024).toFixed(1)} KiB (${bytes} bytes)`);
    expect(bytes).toBeLessThan(WIDGET_MAX_BYTES);
  });

  it('serves the dashboard at /agent and /agent/, and the assets it refers to', async () => {
    for (const route of ['/agent', '/agent/']) {
      const response = await fetch(`${server.url}${route}`, { redirect: 'manual' });
      expect(response.status, route).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    }
    const html = await (await fetch(`${server.url}/agent`)).text();
    const assets = [...html.matchAll(/(?:src|href)="(\/agent\/assets\/[^"]+)"/g)].map((match) => match[1]);
    expect(assets.some((asset) => asset?.endsWith('.js'))).toBe(true);
    expect(assets.some((asset) => asset?.endsWith('.css'))).toBe(true);
    for (const asset of assets) {
      const response = await fetch(`${server.url}${asset}`);
      expect(response.status, asset).toBe(200);
      expect(response.headers.get('content-type')).toMatch(asset?.endsWith('.css') ? /^text\/css/ : /javascript/);
    }
  });

  it('leaves /api and unknown asset paths alone', async () => {
    expect((await fetch(`${server.url}/api/nothing`)).headers.get('content-type')).toMatch(/^application\/json/);
    expect((await fetch(`${server.url}/agent/assets/missing.js`)).status).toBe(404);
  });
});

describe('pages without a build', () => {
  let dir: string;
  let http: Server;
  let base: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'callchart-pages-'));
    const app = express();
    mountPages(app, { hostPage: defaultPagePaths.hostPage, widgetDist: path.join(dir, 'widget'), dashboardDist: path.join(dir, 'dashboard') });
    http = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => http.once('listening', resolve));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => http.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 with how to build, instead of a bare 404', async () => {
    for (const route of ['/widget.js', '/agent']) {
      const response = await fetch(`${base}${route}`);
      expect(response.status, route).toBe(503);
      expect(await response.text()).toContain('npm run build');
    }
  });
});
