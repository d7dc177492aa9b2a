/**
 * Builds the browser apps the server serves (the widget bundle, the dashboard and the inspector) with Vite.
 * `npm run build` always builds; `npm start` and the test suite build only what is stale, so a fresh
 * clone works after `npm install` and an unchanged tree costs nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from './repoRoot.ts';

export interface AppBuild {
  name: string;
  dir: string;
  /** The file whose age says when the app was last built. */
  output: string;
}

export const apps: readonly AppBuild[] = [
  { name: 'widget', dir: path.join(repoRoot, 'apps/widget'), output: path.join(repoRoot, 'apps/widget/dist/widget.js') },
  { name: 'dashboard', dir: path.join(repoRoot, 'apps/dashboard'), output: path.join(repoRoot, 'apps/dashboard/dist/index.html') },
  { name: 'inspector', dir: path.join(repoRoot, 'apps/inspector'), output: path.join(repoRoot, 'apps/inspector/dist/index.html') },
];

// The bundles inline the machines (the widget and dashboard the client, the dashboard and inspector the
// shared UI), so a change there makes them stale too.
const sharedSources = ['machines/src', 'apps/client/src', 'apps/ui/src'].map((dir) => path.join(repoRoot, dir));

async function newestMtime(target: string): Promise<number> {
  const info = await stat(target).catch(() => null);
  if (info === null) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  let newest = info.mtimeMs;
  for (const entry of await readdir(target)) {
    if (entry === 'dist' || entry === 'node_modules') continue;
    newest = Math.max(newest, await newestMtime(path.join(target, entry)));
  }
  return newest;
}

export async function isStale(app: AppBuild): Promise<boolean> {
  if (!existsSync(app.output)) return true;
  const built = (await stat(app.output)).mtimeMs;
  const sources = await Promise.all([app.dir, ...sharedSources].map(newestMtime));
  return sources.some((mtime) => mtime > built);
}

const viteBin = path.join(repoRoot, 'node_modules/vite/bin/vite.js');

export async function buildApp(app: AppBuild): Promise<void> {
  // A child process with NODE_ENV=production: inside vitest NODE_ENV is `test`, and Vite and the React
  // plugin would then emit React's development build.
  const child = spawn(process.execPath, [viteBin, 'build', '--logLevel', 'warn'], {
    cwd: app.dir,
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: 'inherit',
  });
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  if (code !== 0) throw new Error(`building apps/${app.name} failed (${signal ?? `exit code ${String(code)}`})`);
}

/** Builds every app, or with `onlyStale` only those older than their sources; returns the names built. */
export async function buildApps({ onlyStale = false, log = console.log }: { onlyStale?: boolean; log?: (line: string) => void } = {}): Promise<string[]> {
  const built: string[] = [];
  for (const app of apps) {
    if (onlyStale && !(await isStale(app))) continue;
    const started = performance.now();
    await buildApp(app);
    log(`built apps/${app.name} in ${Math.round(performance.now() - started)} ms`);
    built.push(app.name);
  }
  return built;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const built = await buildApps({ onlyStale: process.argv.includes('--stale') });
  if (built.length === 0) console.log('apps are up to date');
}
