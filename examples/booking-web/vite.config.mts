import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// @rollgate/web is a workspace package linked into node_modules; its package.json points bundlers
// at an ES-module build ("module" condition), so neither dev nor build needs optimizeDeps tweaks.
// In dev (`npm run dev -w examples/booking-web`), API calls go to the server on :3000.
const api = process.env.API_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  plugins: [react()],
  server: { proxy: { '/ofrep': { target: api, changeOrigin: true }, '/demo': api, '/payments': api, '/rollgate': api } },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
});
