import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Served by the callchart server under /agent.
export default defineConfig({
  plugins: [react()],
  base: '/agent/',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
});
