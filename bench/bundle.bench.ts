/**
 * Bundle size, built fresh. First what a visitor's browser really transfers for the widget, measured in
 * Chromium from the real server with `Accept-Encoding: br, gzip`: before the visitor clicks (the loader and
 * the widget) and after (what a call adds), against every widget module fetched at once, which is what one
 * eager bundle would cost; with the ten modules that weigh most before the click. Then the JavaScript of the
 * widget, the dashboard and the inspector, raw and gzipped, against the libraries each is made of (React's
 * API, XState, @xstate/react, socket.io-client, zod) bundled alone in the same run: the floor our code sits
 * on. The widget's React is Preact's compatibility layer; the dashboard's is React itself.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { reactOnPreact } from '@callchart/widget/reactOnPreact';
import { apps, buildApp } from '../scripts/build-apps.ts';
import { repoRoot } from '../scripts/repoRoot.ts';
import { launchBrowser } from '../test/support/browser.ts';
import { spawnServer, freePort, tempDatabase } from '../test/support/server.ts';
import { atMost, type Benchmark, type Figure } from './lib/bench.ts';
import { moduleShares } from './lib/bundle/modules.ts';
import { measureWidgetTransfer, type WidgetTransfer } from './lib/bundle/transfer.ts';
import { ratio } from './lib/stats.ts';

const KB = 1000;
const WIDGET_GZIP_TARGET_KB = 100;
const BEFORE_CLICK_TARGET_KB = 60;
const WIDGET_DIST = path.join(repoRoot, 'apps/widget/dist');

interface Size {
  files: string[];
  raw: number;
  gzip: number;
}

function measure(files: string[]): Size {
  let raw = 0;
  let gzip = 0;
  for (const file of files) {
    const bytes = readFileSync(file);
    raw += bytes.byteLength;
    gzip += gzipSync(bytes, { level: 9 }).byteLength;
  }
  return { files: files.map((file) => path.relative(repoRoot, file)), raw, gzip };
}

/** The JavaScript a page loads at start: for the Vite page builds, every chunk but the lazily loaded ones. */
function pageScripts(dist: string): string[] {
  const assets = path.join(dist, 'assets');
  const html = readFileSync(path.join(dist, 'index.html'), 'utf8');
  return readdirSync(assets)
    .filter((file) => file.endsWith('.js') && html.includes(file))
    .map((file) => path.join(assets, file));
}

const LIBRARIES = ['react', 'react-dom/client', 'xstate', '@xstate/react', 'socket.io-client', 'zod/mini'];

async function librariesAlone(scratchDir: string, name: string, alias: Record<string, string> = {}): Promise<Size> {
  const entry = path.join(scratchDir, `${name}.js`);
  // Namespaces kept alive whole, so nothing is shaken out: what the libraries weigh before our code uses them.
  writeFileSync(entry, LIBRARIES.map((lib, i) => `import * as lib${i} from '${lib}';`).join('\n') + `\nglobalThis.keep = [${LIBRARIES.map((_, i) => `lib${i}`).join(', ')}];\n`);
  const outfile = path.join(scratchDir, `${name}.min.js`);
  await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'iife',
    outfile,
    nodePaths: [path.join(repoRoot, 'node_modules')],
    alias,
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  });
  return measure([outfile]);
}

/** Every widget module as built, and the share of each source module in those the page loads before a click. */
function widgetFiles(transfer: WidgetTransfer) {
  const assets = path.join(WIDGET_DIST, 'widget/assets');
  const all = readdirSync(assets).filter((file) => file.endsWith('.js')).map((file) => path.join(assets, file));
  const beforeClick = transfer.beforeClick.files.map((file) => path.join(WIDGET_DIST, file.path)).filter((file) => file.endsWith('.js') && all.includes(file));
  return { all, beforeClick };
}

async function widgetTransfer(): Promise<WidgetTransfer> {
  const db = tempDatabase();
  const server = await spawnServer({ PORT: String(await freePort()), DATABASE_PATH: db.path });
  const browser = await launchBrowser();
  try {
    return await measureWidgetTransfer(browser, `${server.url}/`);
  } finally {
    await browser.close();
    await server.kill('SIGKILL');
    db.remove();
  }
}

const bundle: Benchmark = {
  name: 'bundle',
  title: 'Bundle size: widget, dashboard and inspector JavaScript, raw and gzip',
  async run({ scratchDir, log }) {
    for (const app of apps) {
      log(`building apps/${app.name}`);
      await buildApp(app);
    }
    log('loading the demo page in Chromium');
    const transfer = await widgetTransfer();
    const files = widgetFiles(transfer);
    const shares = moduleShares(files.beforeClick);
    const eager = files.all.reduce((total, file) => total + readFileSync(existsSync(`${file}.br`) ? `${file}.br` : file).byteLength, 0);
    const widget = measure([path.join(WIDGET_DIST, 'widget.js'), ...files.all]);
    const dashboard = measure(pageScripts(path.join(repoRoot, 'apps/dashboard/dist')));
    const inspectorDist = path.join(repoRoot, 'apps/inspector/dist');
    const inspector = statSync(path.join(inspectorDist, 'index.html'), { throwIfNoEntry: false }) ? measure(pageScripts(inspectorDist)) : null;
    const libraries = await librariesAlone(scratchDir, 'libraries-react');
    const widgetLibraries = await librariesAlone(scratchDir, 'libraries-preact', reactOnPreact);
    const kb = (bytes: number) => Math.round((bytes / KB) * 10) / 10;
    const figures: Figure[] = [
      {
        name: 'widget transferred before the click',
        value: kb(transfer.beforeClick.transferred),
        unit: 'kB',
        baseline: { name: 'every widget module at once (Brotli bodies)', value: kb(eager) },
        ratio: ratio(transfer.beforeClick.transferred, eager),
        target: `≤ ${BEFORE_CLICK_TARGET_KB} kB`,
        met: atMost(transfer.beforeClick.transferred / KB, BEFORE_CLICK_TARGET_KB),
        note: `${transfer.beforeClick.files.length} requests, headers included; the largest modules before the click: ${shares
          .slice(0, 10)
          .map((share) => `${share.module} ${kb(share.bytes)} kB`)
          .join(', ')} (minified, before compression).`,
      },
      {
        name: 'widget transferred after the click',
        value: kb(transfer.afterClick.transferred),
        unit: 'kB',
        baseline: { name: 'every widget module at once (Brotli bodies)', value: kb(eager) },
        ratio: ratio(transfer.afterClick.transferred, eager),
        note: `${transfer.afterClick.files.length} requests: the click adds ${transfer.afterClick.files
          .filter((file) => !transfer.beforeClick.files.some((before) => before.path === file.path))
          .map((file) => path.basename(file.path))
          .join(', ')}.`,
      },
      {
        name: 'widget gzip, every module',
        value: kb(widget.gzip),
        unit: 'kB',
        baseline: { name: 'its libraries alone (React API on Preact)', value: kb(widgetLibraries.gzip) },
        ratio: ratio(widget.gzip, widgetLibraries.gzip),
        target: `≤ ${WIDGET_GZIP_TARGET_KB} kB`,
        met: atMost(widget.gzip / KB, WIDGET_GZIP_TARGET_KB),
        note: `The same libraries with React DOM weigh ${kb(libraries.gzip)} kB gzip alone: ${kb(libraries.gzip - widgetLibraries.gzip)} kB more than the widget's runtime.`,
      },
      {
        name: 'widget raw, every module',
        value: kb(widget.raw),
        unit: 'kB',
        baseline: { name: 'its libraries alone (React API on Preact)', value: kb(widgetLibraries.raw) },
        ratio: ratio(widget.raw, widgetLibraries.raw),
      },
      { name: 'dashboard gzip', value: kb(dashboard.gzip), unit: 'kB', baseline: { name: 'its libraries alone (React)', value: kb(libraries.gzip) }, ratio: ratio(dashboard.gzip, libraries.gzip) },
      { name: 'dashboard raw', value: kb(dashboard.raw), unit: 'kB' },
      ...(inspector ? [{ name: 'inspector gzip', value: kb(inspector.gzip), unit: 'kB' }, { name: 'inspector raw', value: kb(inspector.raw), unit: 'kB' }] : []),
    ];
    return { figures, data: { transfer, modulesBeforeClick: shares.slice(0, 10), widget, dashboard, inspector, libraries: { ...libraries, modules: LIBRARIES }, widgetLibraries: { ...widgetLibraries, modules: LIBRARIES, alias: reactOnPreact } } };
  },
};

export default bundle;
