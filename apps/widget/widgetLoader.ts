/**
 * A Vite plugin: once the widget's modules are bundled under content-hashed names, it builds the loader
 * (src/loader.ts) as a classic script, `widget.js`, that imports the entry module by its hashed name. A
 * release then changes one small file that browsers revalidate, and everything it points to is immutable.
 */
import path from 'node:path';
import { build } from 'esbuild';
import type { Plugin } from 'vite';

export const WIDGET_ASSETS = 'widget/assets';

export function widgetLoader(): Plugin {
  return {
    name: 'callchart-widget-loader',
    apply: 'build',
    async generateBundle(_options, bundle) {
      const entry = Object.values(bundle).find((output) => output.type === 'chunk' && output.isEntry);
      if (!entry) this.error('the widget build has no entry chunk');
      const result = await build({
        entryPoints: [path.join(import.meta.dirname, 'src/loader.ts')],
        bundle: true,
        minify: true,
        format: 'iife',
        target: 'es2020',
        write: false,
        // Relative to the loader's own URL, which sits at the root of the assets' parent.
        define: { WIDGET_ENTRY: JSON.stringify(entry.fileName) },
        logLevel: 'silent',
      });
      const [output] = result.outputFiles;
      if (!output) this.error('the widget loader build wrote nothing');
      this.emitFile({ type: 'asset', fileName: 'widget.js', source: output.text });
    },
  };
}
