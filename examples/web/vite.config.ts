/** `npm run example:build`: the example page, bundled into examples/web/dist (git-ignored). */
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  // Relative asset URLs: dist/ can be served from any path or opened by any static server.
  base: './',
  build: { outDir: 'dist', emptyOutDir: true },
  server: { port: 5173, strictPort: true },
  preview: { port: 5173, strictPort: true },
});
