import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';
import { precompress } from '../../scripts/precompress.ts';
import { reactOnPreact } from './reactOnPreact.ts';
import { WIDGET_ASSETS, widgetLoader } from './widgetLoader.ts';

// The widget is ES modules under hashed names (its CSS inlined into them), so code a visitor may never run
// is split off and fetched on demand; `widget.js` is the classic-script loader a host page embeds.
export default defineConfig({
  plugins: [react(), widgetLoader(), precompress()],
  resolve: { alias: reactOnPreact },
  // Library mode leaves process.env alone, and React would then ship its development build.
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    lib: {
      entry: 'src/main.tsx',
      formats: ['es'],
    },
    rolldownOptions: {
      output: {
        // Library mode leaves ES output unminified, for a consumer's bundler; this is the end product.
        minify: true,
        entryFileNames: `${WIDGET_ASSETS}/widget-[hash].js`,
        chunkFileNames: `${WIDGET_ASSETS}/[name]-[hash].js`,
      },
    },
  },
});
