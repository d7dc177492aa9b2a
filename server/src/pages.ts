/**
 * The pages the server hands to browsers: the demo host page at `/`, the widget bundle it embeds at
 * `/widget.js`, and the agent dashboard under `/agent`. They are Vite builds (`npm run build`, which
 * `npm start` runs when they are stale); a server started without them still answers, with a 503
 * that says how to build them, so the API and Socket.IO never depend on the front ends.
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
}

export const defaultPagePaths: PagePaths = {
  hostPage: path.join(repoRoot, 'apps/widget/demo/index.html'),
  widgetDist: path.join(repoRoot, 'apps/widget/dist'),
  dashboardDist: path.join(repoRoot, 'apps/dashboard/dist'),
};

// Pages and the widget keep their URL across builds, so browsers must revalidate them; the
// dashboard's hashed assets never change under one name.
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

  const dashboardIndex = path.join(paths.dashboardDist, 'index.html');
  app.use(
    '/agent/assets',
    express.static(path.join(paths.dashboardDist, 'assets'), {
      index: false,
      setHeaders: (res) => res.set('Cache-Control', IMMUTABLE),
    }),
  );
  // The build refers to its assets by absolute path, so the page works at `/agent` and `/agent/` alike.
  app.get(['/agent', '/agent/'], sendBuilt(dashboardIndex, 'dashboard'));
}
