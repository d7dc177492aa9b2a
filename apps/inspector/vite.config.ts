import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';
import { precompress } from '../../scripts/precompress.ts';

// Served by the callchart server under /inspect.
export default defineConfig({
  plugins: [react(), precompress()],
  base: '/inspect/',
  // The layout chunk is elkjs, well over Vite's default warning size, and loaded only with the first chart.
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 2_000 },
});
