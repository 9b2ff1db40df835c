// Builds the /home/ page into dist/, which the station-api binary embeds and serves:
// dist/index.html at /home/ and dist/assets/* at /home/assets/*. The output is committed,
// so it must come out byte-for-byte the same from the same sources and lock file.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import licences, { LICENCES_PLACEHOLDER } from './build/licences.js';

const root = fileURLToPath(new URL('.', import.meta.url));

// `npm run dev` / `npm run preview` talk to a running station-api for the data; this stands
// in for the /home/config.json the binary serves.
const api = process.env.STATION_API_URL ?? 'http://127.0.0.1:8000';
const devConfig = {
  map_tile_url: process.env.MAP_TILE_URL ?? null,
  map_attribution: process.env.MAP_ATTRIBUTION ?? null,
  reading_interval_seconds: Number(process.env.READING_INTERVAL_SECONDS ?? 10),
};
function devStandIns() {
  // Returns nothing: a function returned from configureServer would be run as a late hook.
  const serveConfig = (server) => {
    server.middlewares.use('/home/config.json', (_req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(devConfig));
    });
  };
  return {
    name: 'station-api:dev-stand-ins',
    configureServer: serveConfig,
    configurePreviewServer: serveConfig,
    // In dev there is no built licences file; the link goes nowhere harmful.
    transformIndexHtml: {
      order: 'pre',
      handler: (html, ctx) => (ctx.server ? html.replace(LICENCES_PLACEHOLDER, '#') : html),
    },
  };
}

const proxy = { '/station/': { target: api, changeOrigin: false } };

const base = '/home/';

export default defineConfig({
  root,
  base,
  // Everything the page loads lives under /home/assets/; nothing is copied from a public dir.
  publicDir: false,
  plugins: [devStandIns(), licences({ root, base })],
  server: { proxy },
  preview: { proxy },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    target: 'es2020',
    // The page's CSP is script-src 'self': no inline polyfill script.
    modulePreload: { polyfill: false },
    sourcemap: false,
    // Files are served from the binary; a data: URI would only make the CSS bigger for
    // the images Leaflet's stylesheet names but this page never shows.
    assetsInlineLimit: 0,
    reportCompressedSize: true,
  },
});
