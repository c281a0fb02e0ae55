import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The dashboard's build: static files in dist/app that the admin router / controller serve.
// `base: './'`: every URL in index.html is relative, so the same build works at any mount path.
// In dev (`npm run dev -w @rollgate/dashboard`) the admin API is proxied to a server on :3000
// (e.g. the booking demo) and the page finds it at /rollgate/admin (see index.html's meta).
const api = process.env.API_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  plugins: [react()],
  server: { proxy: { '/rollgate/admin': { target: api, changeOrigin: true } } },
  build: {
    outDir: 'dist/app',
    emptyOutDir: true,
    sourcemap: false,
    // no data: URIs (the CSP allows images from this origin only) and no module-preload polyfill
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    rollupOptions: {
      output: {
        // React and uPlot change less often than the app: their files stay cached across upgrades
        manualChunks: (id: string) => (/[\\/]node_modules[\\/]uplot[\\/]/.test(id) ? 'uplot' : /[\\/]node_modules[\\/](react|react-dom|scheduler)[\\/]/.test(id) ? 'react' : undefined),
      },
    },
  },
});
