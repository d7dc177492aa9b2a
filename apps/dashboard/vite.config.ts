import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';
import { precompress } from '../../scripts/precompress.ts';

// Served by the callchart server under /agent.
export default defineConfig({
  plugins: [react(), precompress()],
  base: '/agent/',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
});
