/**
 * The pages the server hands to browsers: the demo host page at `/`, the widget bundle it embeds at
 * `/widget.js`, the agent dashboard under `/agent` and the live inspector under `/inspect`. They are
 * Vite builds (`npm run build`, which `npm start` runs when they are stale); a server started without
 * them still answers, with a 503 that says how to build them, so the API and Socket.IO never depend on
 * the front ends. The inspector's page is open to anyone; its data is not: the `/inspect` Socket.IO
 * namespace and `/api/calls` admit only tokens with the inspector role.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { appPageHeaders, demoPageHeaders } from './headers.ts';

// The server runs from its workspace, and the front ends' builds sit in their own workspaces beside it.
const appsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../apps');

export interface PagePaths {
  hostPage: string;
  widgetDist: string;
  dashboardDist: string;
  inspectorDist: string;
}

export const defaultPagePaths: PagePaths = {
  hostPage: path.join(appsDir, 'widget/demo/index.html'),
  widgetDist: path.join(appsDir, 'widget/dist'),
  dashboardDist: path.join(appsDir, 'dashboard/dist'),
  inspectorDist: path.join(appsDir, 'inspector/dist'),
};

// Pages keep their URL across builds, so browsers must revalidate them. The widget loader keeps its URL
// too, but is fetched by every visit to every host page: a few minutes' freshness saves most requests, and
// its ETag makes the rest a 304. The hashed assets of the dashboard and the inspector never change under
// one name.
const REVALIDATE = 'no-cache';
const LOADER = 'public, max-age=300';
const IMMUTABLE = 'public, max-age=31536000, immutable';

// The variants the build writes beside each file (scripts/precompress.ts), best first.
const ENCODINGS = [
  { name: 'br', suffix: '.br' },
  { name: 'gzip', suffix: '.gz' },
] as const;

function notBuilt(res: Response, what: string): void {
  res.status(503).type('text/plain; charset=utf-8').set('Cache-Control', 'no-store').send(`The ${what} is not built yet. Run \`npm run build\` (or \`npm start\`, which builds it).\n`);
}

/**
 * Sends `file`, or its compressed twin when the browser takes that encoding: typed as the file itself,
 * varying by Accept-Encoding, with an ETag and Last-Modified of the bytes sent, so a revalidation is a 304.
 */
function sendFile(req: Request, res: Response, next: NextFunction, file: string, cacheControl: string, headers: Record<string, string> = {}): void {
  res.vary('Accept-Encoding');
  res.set('Cache-Control', cacheControl);
  res.set(headers);
  // Ours, best first, among those the browser takes at all: `gzip, br` still gets Brotli.
  const variant = ENCODINGS.find((e) => req.acceptsEncodings(e.name) === e.name && existsSync(file + e.suffix));
  if (variant) {
    res.type(path.extname(file));
    res.set('Content-Encoding', variant.name);
  }
  res.sendFile(variant ? file + variant.suffix : file, (error) => {
    if (error) next(error);
  });
}

function sendBuilt(file: string, what: string, cacheControl = REVALIDATE, headers: Record<string, string> = {}): RequestHandler {
  return (req, res, next) => {
    if (!existsSync(file)) return notBuilt(res, what);
    sendFile(req, res, next, file, cacheControl, headers);
  };
}

// The widget runs in other sites' pages: its modules are fetched in CORS mode, and a page that isolates
// itself (COEP) loads only resources that say they may be embedded. They are public code, so `*` is right.
const EMBEDDABLE = { 'Access-Control-Allow-Origin': '*', 'Cross-Origin-Resource-Policy': 'cross-origin' };

export function mountPages(app: Express, paths: PagePaths = defaultPagePaths): void {
  app.get('/', ...demoPageHeaders, sendBuilt(paths.hostPage, 'demo page'));
  app.get('/widget.js', sendBuilt(path.join(paths.widgetDist, 'widget.js'), 'widget', LOADER, EMBEDDABLE));
  // The loader's modules (apps/widget/widgetLoader.ts), under the same path as in the build.
  mountAssets(app, '/widget/assets', path.join(paths.widgetDist, 'widget/assets'), EMBEDDABLE);

  mountApp(app, '/agent', paths.dashboardDist, 'dashboard');
  mountApp(app, '/inspect', paths.inspectorDist, 'inspector');
}

/** A Vite app built with `base: '<route>/'`: its page at the route, its hashed assets below it. */
function mountApp(app: Express, route: string, dist: string, what: string): void {
  mountAssets(app, `${route}/assets`, path.join(dist, 'assets'));
  // The build refers to its assets by absolute path, so the page works with and without the trailing slash.
  app.get([route, `${route}/`], ...appPageHeaders, sendBuilt(path.join(dist, 'index.html'), what));
}

/** Content-hashed build output: one name, one content, so cached for good. */
function mountAssets(app: Express, route: string, dir: string, headers: Record<string, string> = {}): void {
  app.get(`${route}/:name`, (req, res, next) => {
    const name = req.params.name;
    // One path segment, never a variant asked for by name: the encoding is the server's choice.
    if (name !== path.basename(name) || ENCODINGS.some((e) => name.endsWith(e.suffix))) return next();
    const file = path.join(dir, name);
    if (!existsSync(file)) return next();
    sendFile(req, res, next, file, IMMUTABLE, headers);
  });
}
