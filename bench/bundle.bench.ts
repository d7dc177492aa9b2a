/**
 * Bundle size: the JavaScript a visitor's browser downloads for the widget, and an agent's for the dashboard
 * and the inspector, raw and gzipped, built fresh. The baseline is the libraries each is made of (React's API,
 * XState, @xstate/react, socket.io-client, zod) bundled alone, minified, in the same run: the floor our own
 * code sits on. The widget's React is Preact's compatibility layer, as its build has it; the dashboard's is
 * React itself, and the widget is also compared with that, which is what the switch saves.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { apps, buildApp, repoRoot } from '../scripts/build-apps.ts';
import { atMost, type Benchmark, type Figure } from './lib/bench.ts';
import { ratio } from './lib/stats.ts';
import { reactOnPreact } from '../apps/widget/reactOnPreact.ts';

const KB = 1000;
const WIDGET_GZIP_TARGET_KB = 100;

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

const LIBRARIES = ['react', 'react-dom/client', 'xstate', '@xstate/react', 'socket.io-client', 'zod'];

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

const bundle: Benchmark = {
  name: 'bundle',
  title: 'Bundle size: widget, dashboard and inspector JavaScript, raw and gzip',
  async run({ scratchDir, log }) {
    for (const app of apps) {
      log(`building apps/${app.name}`);
      await buildApp(app);
    }
    const widget = measure([path.join(repoRoot, 'apps/widget/dist/widget.js')]);
    const dashboard = measure(pageScripts(path.join(repoRoot, 'apps/dashboard/dist')));
    const inspectorDist = path.join(repoRoot, 'apps/inspector/dist');
    const inspector = statSync(path.join(inspectorDist, 'index.html'), { throwIfNoEntry: false }) ? measure(pageScripts(inspectorDist)) : null;
    const libraries = await librariesAlone(scratchDir, 'libraries-react');
    const widgetLibraries = await librariesAlone(scratchDir, 'libraries-preact', reactOnPreact);
    const kb = (bytes: number) => Math.round((bytes / KB) * 10) / 10;
    const figures: Figure[] = [
      {
        name: 'widget gzip',
        value: kb(widget.gzip),
        unit: 'kB',
        baseline: { name: 'its libraries alone (React API on Preact)', value: kb(widgetLibraries.gzip) },
        ratio: ratio(widget.gzip, widgetLibraries.gzip),
        target: `≤ ${WIDGET_GZIP_TARGET_KB} kB`,
        met: atMost(widget.gzip / KB, WIDGET_GZIP_TARGET_KB),
        note: `The same libraries with React DOM weigh ${kb(libraries.gzip)} kB gzip alone: ${kb(libraries.gzip - widgetLibraries.gzip)} kB more than the widget's runtime.`,
      },
      {
        name: 'widget raw',
        value: kb(widget.raw),
        unit: 'kB',
        baseline: { name: 'its libraries alone (React API on Preact)', value: kb(widgetLibraries.raw) },
        ratio: ratio(widget.raw, widgetLibraries.raw),
      },
      { name: 'dashboard gzip', value: kb(dashboard.gzip), unit: 'kB', baseline: { name: 'its libraries alone (React)', value: kb(libraries.gzip) }, ratio: ratio(dashboard.gzip, libraries.gzip) },
      { name: 'dashboard raw', value: kb(dashboard.raw), unit: 'kB' },
      ...(inspector ? [{ name: 'inspector gzip', value: kb(inspector.gzip), unit: 'kB' }, { name: 'inspector raw', value: kb(inspector.raw), unit: 'kB' }] : []),
    ];
    return { figures, data: { widget, dashboard, inspector, libraries: { ...libraries, modules: LIBRARIES }, widgetLibraries: { ...widgetLibraries, modules: LIBRARIES, alias: reactOnPreact } } };
  },
};

export default bundle;
