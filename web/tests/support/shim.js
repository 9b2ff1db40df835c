// A stand-in for the binary's /home/ routes, for a binary built before it served them
// (STATION_HOME_SHIM=1). It serves dist/ as the binary is specified to (the same CSP, config
// and cache headers, compressed) and passes every other request through to the real server,
// so the page is tested against the real API and stream. Auth of /home/ itself and
// --public-home cannot be checked through it; those tests are skipped.

import { readFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { join, normalize } from 'node:path';
import { gzipSync } from 'node:zlib';
import { AUTH, BIN, WEB_DIR, freePort } from './server.js';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
};

export function contentSecurityPolicy(tileUrl) {
  const tiles = tileUrl ? ` ${new URL(tileUrl.replace(/\{[^}]*\}/g, 'x')).origin}` : '';
  return (
    `default-src 'self'; img-src 'self' data:${tiles}; style-src 'self'; script-src 'self'; ` +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
  );
}

export async function startShim(server, { tileUrl = null, attribution = null, interval = 10 } = {}) {
  const port = await freePort();
  const dist = join(WEB_DIR, 'dist');
  const send = (req, res, status, type, body, headers = {}) => {
    const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '') && !type.startsWith('image/');
    const payload = gzip ? gzipSync(body) : body;
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Length': payload.length,
      ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
      'X-Content-Type-Options': 'nosniff',
      ...headers,
    });
    res.end(payload);
  };
  const http = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/home/') {
      return send(req, res, 200, TYPES['.html'], readFileSync(join(dist, 'index.html')), {
        'Content-Security-Policy': contentSecurityPolicy(tileUrl),
        'Cache-Control': 'no-cache',
      });
    }
    if (path === '/home/config.json') {
      const config = { map_tile_url: tileUrl, map_attribution: attribution, reading_interval_seconds: interval };
      return send(req, res, 200, TYPES['.json'], Buffer.from(JSON.stringify(config)));
    }
    if (path.startsWith('/home/assets/')) {
      const file = normalize(path.slice('/home/assets/'.length));
      if (file.startsWith('..') || file.includes('/')) return send(req, res, 404, TYPES['.json'], Buffer.from('{}'));
      try {
        const body = readFileSync(join(dist, 'assets', file));
        const type = TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream';
        return send(req, res, 200, type, body, { 'Cache-Control': 'public, max-age=31536000, immutable' });
      } catch {
        return send(req, res, 404, TYPES['.json'], Buffer.from('{"detail":"Not found."}'));
      }
    }
    // Everything else goes to the real server, streamed both ways (the event stream too).
    const upstream = request(
      { host: '127.0.0.1', port: server.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
        // A server that dies mid-answer (the event stream) must drop the browser's connection
        // too, as it would without the stand-in in between.
        answer.on('close', () => answer.complete || res.destroy());
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'application/json' });
      res.end('{"detail":"The server is down."}');
    });
    req.pipe(upstream);
  });
  await new Promise((done) => http.listen(port, '127.0.0.1', done));
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => {
      http.closeAllConnections();
      return new Promise((done) => http.close(done));
    },
  };
}

// Where the page of `server` is: the binary itself when it serves /home/, else (only when
// asked with STATION_HOME_SHIM=1) the stand-in above.
export async function homeFor(server, options = {}) {
  const probe = await fetch(`${server.origin}/home/`, { headers: { Authorization: AUTH } });
  if (probe.ok) return { origin: server.origin, shim: false, close: async () => {} };
  if (process.env.STATION_HOME_SHIM === '1') {
    const shim = await startShim(server, options);
    return { origin: shim.origin, shim: true, close: shim.close };
  }
  throw new Error(
    `${BIN} answers GET /home/ with ${probe.status}: it does not serve the home page. Build it with ` +
      'the home page, point STATION_API_BIN at one that does, or set STATION_HOME_SHIM=1 to test ' +
      'web/dist through a stand-in for those routes.',
  );
}
