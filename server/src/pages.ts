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
import express, { type Express, type RequestHandler, type Response } from 'express';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface PagePaths {
  hostPage: string;
  widgetDist: string;
  dashboardDist: string;
  inspectorDist: string;
}

export const defaultPagePaths: PagePaths = {
  hostPage: path.join(repoRoot, 'apps/widget/demo/index.html'),
  widgetDist: path.join(repoRoot, 'apps/widget/dist'),
  dashboardDist: path.join(repoRoot, 'apps/dashboard/dist'),
  inspectorDist: path.join(repoRoot, 'apps/inspector/dist'),
};

// Pages and the widget keep their URL across builds, so browsers must revalidate them; the
// hashed assets of the dashboard and the inspector never change under one name.
const REVALIDATE = 'no-cache';
const IMMUTABLE = 'public, max-age=31536000, immutable';

function notBuilt(res: Response, what: string): void {
  res.status(503).type('text/plain; charset=utf-8').set('Cache-Control', 'no-store').send(`The ${what} is not built yet. Run \`npm run build\` (or \`npm start\`, which builds it).\n`);
}

function sendBuilt(file: string, what: string): RequestHandler {
  return (_req, res, next) => {
    if (!existsSync(file)) return notBuilt(res, what);
    res.set('Cache-Control', REVALIDATE);
    res.sendFile(file, (error) => {
      if (error) next(error);
    });
  };
}

export function mountPages(app: Express, paths: PagePaths = defaultPagePaths): void {
  app.get('/', sendBuilt(paths.hostPage, 'demo page'));
  app.get('/widget.js', sendBuilt(path.join(paths.widgetDist, 'widget.js'), 'widget'));
  app.get('/widget.js.map', sendBuilt(path.join(paths.widgetDist, 'widget.js.map'), 'widget'));

  mountApp(app, '/agent', paths.dashboardDist, 'dashboard');
  mountApp(app, '/inspect', paths.inspectorDist, 'inspector');
}

/** A Vite app built with `base: '<route>/'`: its page at the route, its hashed assets below it. */
function mountApp(app: Express, route: string, dist: string, what: string): void {
  app.use(
    `${route}/assets`,
    express.static(path.join(dist, 'assets'), {
      index: false,
      setHeaders: (res) => res.set('Cache-Control', IMMUTABLE),
    }),
  );
  // The build refers to its assets by absolute path, so the page works with and without the trailing slash.
  app.get([route, `${route}/`], sendBuilt(path.join(dist, 'index.html'), what));
}
