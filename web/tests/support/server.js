// Starting the real station-api binary for the browser tests, and talking to its API.

import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_DIR = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = resolve(WEB_DIR, process.env.STATION_API_BIN ?? '../target/debug/station-api');
export const PASSWORD = 'home-page-test-password';

export function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

// One database in its own temporary directory, and the server process on it (which can be
// killed and started again on the same port and database).
export class StationServer {
  constructor({ publicHome = false, tileUrl = null, extraArgs = [] } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'station-home-'));
    this.database = join(this.dir, 'x.db');
    this.passwordFile = join(this.dir, 'admin-password');
    writeFileSync(this.passwordFile, `${PASSWORD}\n`);
    this.publicHome = publicHome;
    this.tileUrl = tileUrl;
    this.extraArgs = extraArgs;
    this.port = null;
    this.process = null;
    this.logPath = join(this.dir, 'server.log');
  }

  get origin() {
    return `http://127.0.0.1:${this.port}`;
  }

  get databaseUrl() {
    return `sqlite://${this.database}`;
  }

  async start() {
    this.port ??= await freePort();
    const args = [
      'serve',
      '--bind', `127.0.0.1:${this.port}`,
      '--database-url', this.databaseUrl,
      '--admin-password-file', this.passwordFile,
      ...(this.publicHome ? ['--public-home'] : []),
      ...(this.tileUrl ? ['--map-tile-url', this.tileUrl] : []),
      ...this.extraArgs,
    ];
    const log = createWriteStream(this.logPath, { flags: 'a' });
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    this.process = child;
    const exited = new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
    this.exited = exited;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const early = await Promise.race([exited, sleep(100).then(() => null)]);
      if (early) throw new Error(`station-api exited (${JSON.stringify(early)}) while starting:\n${this.log()}`);
      try {
        const response = await fetch(`${this.origin}/healthz`);
        if (response.ok) return this;
      } catch {
        // not listening yet
      }
    }
    throw new Error(`station-api did not answer /healthz within 60 s:\n${this.log()}`);
  }

  log() {
    try {
      return readFileSync(this.logPath, 'utf8').slice(-4000);
    } catch {
      return '(no log)';
    }
  }

  // SIGKILL: the test is about the page surviving a server that vanishes.
  async kill() {
    if (!this.process) return;
    const child = this.process;
    this.process = null;
    child.kill('SIGKILL');
    await this.exited;
  }

  async stop() {
    if (!this.process) return;
    const child = this.process;
    this.process = null;
    child.kill('SIGTERM');
    const done = await Promise.race([this.exited, sleep(10_000).then(() => null)]);
    if (!done) {
      child.kill('SIGKILL');
      await this.exited;
    }
  }

  async dispose() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  // Readings written straight into the database with the binary's `import` (the server may
  // be down): they reach the change log like any other write.
  importReadings(readings) {
    const file = join(this.dir, `import-${Date.now()}.ndjson`);
    writeFileSync(file, readings.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const run = spawnSync(BIN, ['import', '--database-url', this.databaseUrl, file], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`station-api import failed: ${run.stderr}`);
  }

  api() {
    return new Api(this.origin);
  }
}

export const AUTH = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;

export class Api {
  constructor(origin) {
    this.origin = origin;
  }

  async request(method, path, body) {
    const response = await fetch(this.origin + path, {
      method,
      headers: { Authorization: AUTH, 'Content-Type': 'application/json', Accept: 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : null;
  }

  get(path) {
    return this.request('GET', path);
  }

  post(readings) {
    return this.request('POST', '/station/', readings);
  }

  // In bodies of at most `size` readings (the bulk limit is 10,000; 1,000 keeps each
  // transaction short).
  async postMany(readings, size = 1000) {
    for (let i = 0; i < readings.length; i += size) await this.post(readings.slice(i, i + size));
  }

  async latest() {
    const all = [];
    for (let path = '/station/latest/?page_size=1000'; path; ) {
      const page = await this.get(path);
      all.push(...page.results);
      path = page.next ? new URL(page.next).pathname + new URL(page.next).search : null;
    }
    return all;
  }
}
