import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';
import { precompress } from '../../scripts/precompress.ts';
import { reactOnPreact } from './reactOnPreact.ts';

// One classic script a host page embeds with a single tag: an IIFE with its CSS inlined into the bundle.
export default defineConfig({
  plugins: [react(), precompress()],
  resolve: { alias: reactOnPreact },
  // Library mode leaves process.env alone, and React would then ship its development build.
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    lib: {
      entry: 'src/main.tsx',
      name: 'CallchartWidget',
      formats: ['iife'],
      fileName: () => 'widget.js',
    },
  },
});
