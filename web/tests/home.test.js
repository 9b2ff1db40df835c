// The /home/ page in a real browser (Debian's Chromium through playwright-core) against the
// real station-api binary (STATION_API_BIN, default ../target/debug/station-api), each group
// on its own fresh SQLite database. Timings are printed, not asserted, except where the page
// promises one (a new reading shows within 2 seconds).
//
//   npm test                                       # after npm run build

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DESKTOP, PHONE, launch, measureTransfer, openContext } from './support/browser.js';
import { CITIES, manyStations, series, showcase } from './support/data.js';
import { StationServer, WEB_DIR, freePort } from './support/server.js';

const SCREENSHOTS = join(WEB_DIR, '..', 'target', 'home-screenshots');
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const KIB = 1024;
const now = () => Math.floor(Date.now() / 1000);
const celsius = (t) => `${new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(t)} °C`;
const figure = (label, value) => console.log(`${label}: ${value}`);
const rowFor = (page, name) => page.locator('#station-list li', { has: page.locator('.name', { hasText: new RegExp(`^${name}$`) }) });

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

// Opens the page `server` serves and waits until the list shows `count` stations.
async function openHome(server, { credentials = true, viewport = DESKTOP, isMobile = false, hash = '', count } = {}) {
  const { context, record } = await openContext(browser, { credentials, viewport, isMobile });
  const page = await context.newPage();
  const transfer = await measureTransfer(page);
  const started = Date.now();
  const response = await page.goto(`${server.origin}/home/${hash}`);
  if (count !== undefined) {
    const text = count === 1 ? '1 station' : `${count.toLocaleString('en-US')} stations`;
    await page.locator('#station-count', { hasText: new RegExp(`^${text}$`) }).waitFor({ timeout: 30_000 });
  }
  return { context, page, record, transfer, response, loadedMs: Date.now() - started };
}

async function chartTable(page) {
  const details = page.locator('#chart-table');
  if (!(await details.evaluate((el) => el.open))) await page.locator('#chart-table summary').click();
  // The table is filled on the details' toggle event, which comes after the click.
  await page.waitForFunction(() => document.getElementById('chart-table-caption').textContent !== '');
  return page.locator('#chart-table tbody tr').evaluateAll((rows) =>
    rows.map((tr) => ({ start: Number(tr.dataset.start), cells: [...tr.children].slice(1).map((c) => c.textContent) })),
  );
}

describe('the home page against the API', () => {
  let server;
  let api;
  let seededAt;

  before(async () => {
    server = await new StationServer().start();
    api = server.api();
    seededAt = now();
    // A dozen cities, the last two hours a minute apart; Lima's last reading is 10 minutes
    // old, more than 3 intervals of 10 s: late.
    await api.postMany(showcase(seededAt, { hours: 2 }));
  });
  after(async () => {
    await server?.dispose();
  });

  test('loads with no errors, nothing off the origin, under 300 KiB, showing what the API holds', async () => {
    const { context, page, record, transfer, loadedMs } = await openHome(server, { count: CITIES.length });
    try {
      figure('first load, 12 stations: list shown after (ms)', loadedMs);
      await page.locator('#connection[data-state="open"]').waitFor();

      // The list: every station's latest reading, as /station/latest/ has it.
      const latest = await api.latest();
      assert.equal(latest.length, CITIES.length);
      for (const reading of latest) {
        const row = rowFor(page, reading.name);
        await assert.doesNotReject(row.waitFor({ timeout: 5000 }), `no row for ${reading.name}`);
        assert.equal(await row.locator('.temp').textContent(), celsius(reading.temperature), reading.name);
        const late = reading.name === 'Lima';
        assert.equal(await row.evaluate((el) => el.classList.contains('late')), late, `${reading.name} late`);
        assert.equal(await row.locator('.badge').isVisible(), late, `${reading.name} late badge`);
      }
      assert.match(await rowFor(page, 'Lima').locator('.ago').textContent(), /^10 min ago$/);

      // The map: one marker per station, where the API says it is.
      const markers = await page.locator('#map').evaluate((el) => el.stationMarkers);
      assert.deepEqual(
        markers.map((m) => [m.name, m.lat, m.lon]).sort(),
        latest.map((r) => [r.name, r.lat, r.lon]).sort(),
      );
      // And the outline was drawn from the bundled world, not fetched from elsewhere.
      assert.ok(record.requests.some((url) => /\/home\/assets\/countries-110m-[\w-]+\.json$/.test(url)));

      // The chart: the first station by name, the last 24 hours in 5-minute buckets, the same
      // buckets the aggregate endpoint gives.
      await page.locator('#chart-heading', { hasText: 'Temperature at Anchorage' }).waitFor();
      await page.locator('#chart canvas').first().waitFor();
      const table = await chartTable(page);
      const end = Math.floor(now() / 300) * 300 + 300;
      const buckets = (
        await api.get(`/station/aggregate/?name=Anchorage&timestamp__gte=${end - 86400 - 300}&timestamp__lt=${end}&interval=300`)
      ).results;
      assert.ok(buckets.length >= 24, `only ${buckets.length} buckets`);
      const f = (x) => new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(x);
      assert.deepEqual(
        table,
        buckets.map((b) => ({ start: b.start, cells: [String(b.count), f(b.min), f(b.mean), f(b.max)] })),
      );
      await page.locator('#chart-summary', { hasText: /^Anchorage, the last 24 hours: 121 readings/ }).waitFor({ timeout: 2000 });

      // Nothing left the origin, nothing went wrong.
      const origin = new URL(server.origin).origin;
      const outside = record.requests.filter((url) => !url.startsWith('data:') && new URL(url).origin !== origin);
      assert.deepEqual(outside, [], 'requests off the origin');
      // And on it, only the page's own files and the API: no /favicon.ico, no public dir.
      const strays = record.requests.filter((url) => !url.startsWith('data:') && !/^\/(home|station)\//.test(new URL(url).pathname));
      assert.deepEqual(strays, [], 'requests outside /home/ and /station/');
      assert.deepEqual(record.consoleErrors, [], 'console errors');
      assert.deepEqual(record.pageErrors, [], 'page errors');

      // The licences of what the page ships are among its assets, linked from the page.
      const licences = await page.locator('a', { hasText: 'Third-party licences' }).getAttribute('href');
      assert.match(licences, /^\/home\/assets\/licences-[\w-]+\.txt$/);
      const text = await (await context.request.get(server.origin + licences)).text();
      for (const name of ['leaflet 1.9.4', 'uplot 1.6.32', 'topojson-client 3.1.0', 'world-atlas 2.0.2', 'Natural Earth']) {
        assert.ok(text.includes(name), `licences: ${name}`);
      }

      // What the first load cost on the wire, compressed as received.
      const total = transfer.total();
      for (const [url, { bytes, encoding }] of transfer.sizes) {
        figure(`  ${new URL(url).pathname}${new URL(url).search.slice(0, 40)}`, `${bytes} B ${encoding || 'identity'}`);
      }
      figure('first load transferred (KiB, compressed)', (total / KIB).toFixed(1));
      assert.ok(total < 300 * KIB, `first load is ${(total / KIB).toFixed(1)} KiB`);
      for (const [url, { encoding }] of transfer.sizes) {
        if (/\.(js|css|json)$/.test(new URL(url).pathname)) assert.notEqual(encoding, '', `${url} was not compressed`);
      }
    } finally {
      await context.close();
    }
  });

  test('a posted reading appears within 2 seconds, highlighted, and extends the chart', async () => {
    const { context, page, record } = await openHome(server, { count: CITIES.length, hash: '#station=Oslo&period=1h' });
    try {
      await page.locator('#connection[data-state="open"]').waitFor();
      await page.locator('#chart-heading', { hasText: 'Temperature at Oslo' }).waitFor();
      await page.locator('#chart canvas').first().waitFor();
      const before = await chartTable(page);

      const oslo = CITIES.find((c) => c.name === 'Oslo');
      const t = now();
      const posted = Date.now();
      await api.post({ name: 'Oslo', timestamp: t, temperature: 33.3, lat: oslo.lat, lon: oslo.lon });
      const temp = rowFor(page, 'Oslo').locator('.temp', { hasText: '33.3 °C' });
      await temp.waitFor({ timeout: 2000 });
      figure('live: POST to shown on the page (ms)', Date.now() - posted);
      assert.ok(await rowFor(page, 'Oslo').evaluate((el) => el.classList.contains('changed')), 'the row is highlighted');

      // The chart's newest minute took the reading (the table follows within a second).
      const slot = Math.floor(t / 60) * 60;
      const old = before.find((r) => r.start === slot);
      await page.waitForFunction(
        ([start, count]) => {
          const row = document.querySelector(`#chart-table tbody tr[data-start="${start}"]`);
          return row && Number(row.children[1].textContent) === count;
        },
        [slot, (old ? Number(old.cells[0]) : 0) + 1],
        { timeout: 3000 },
      );
      const row = (await chartTable(page)).find((r) => r.start === slot);
      assert.equal(row.cells[3], '33.3', `the bucket max is the new reading: ${JSON.stringify({ row, old, t })}`);

      // A station never seen before joins the list and the map.
      await api.post({ name: 'Kyiv', timestamp: now(), temperature: -4.2, lat: 50.45, lon: 30.52 });
      await rowFor(page, 'Kyiv').waitFor({ timeout: 2000 });
      await page.locator('#station-count', { hasText: /^13 stations$/ }).waitFor({ timeout: 2000 });
      assert.ok((await page.locator('#map').evaluate((el) => el.stationMarkers)).some((m) => m.name === 'Kyiv'));

      // A delete of a station's latest reading brings back its previous one.
      const [kyiv2] = await api.post([{ name: 'Kyiv', timestamp: now() + 1, temperature: 7.7, lat: 50.45, lon: 30.52 }]);
      await rowFor(page, 'Kyiv').locator('.temp', { hasText: '7.7 °C' }).waitFor({ timeout: 2000 });
      await api.request('DELETE', `/station/${kyiv2.id}/`);
      await rowFor(page, 'Kyiv').locator('.temp', { hasText: '-4.2 °C' }).waitFor({ timeout: 3000 });

      // Nothing was polled: after the first load only the stream brought news (the one
      // exception, the re-read of Kyiv's latest after its delete).
      const lists = record.requests.filter((url) => url.includes('/station/latest/'));
      assert.deepEqual(lists.map((u) => new URL(u).search), ['?page_size=1000', '?page_size=1000&name=Kyiv']);
      assert.deepEqual(record.consoleErrors, []);
    } finally {
      await context.close();
    }
  });

  test('keyboard: Tab reaches the list, arrows, Home, End and Enter choose the charted station', async () => {
    const { context, page } = await openHome(server, { count: CITIES.length + 1 });
    try {
      await page.locator('#chart-heading', { hasText: 'Temperature at Anchorage' }).waitFor();
      await page.focus('#sort');
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'station-list');
      const activeName = () =>
        page.evaluate(() => {
          const id = document.activeElement.getAttribute('aria-activedescendant');
          return id && document.getElementById(id).querySelector('.name').textContent;
        });
      assert.equal(await activeName(), 'Anchorage');
      await page.keyboard.press('ArrowDown');
      assert.equal(await activeName(), 'Cairo');
      await page.locator('#chart-heading', { hasText: 'Temperature at Cairo' }).waitFor();
      assert.equal(await rowFor(page, 'Cairo').getAttribute('aria-selected'), 'true');
      await page.keyboard.press('End');
      assert.equal(await activeName(), 'Tokyo');
      await page.locator('#chart-heading', { hasText: 'Temperature at Tokyo' }).waitFor();
      await page.keyboard.press('Home');
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('Enter');
      await page.locator('#chart-heading', { hasText: 'Temperature at Chandigarh' }).waitFor();

      // Search narrows the list and the arrows walk only what is shown.
      await page.fill('#search', 'o');
      await page.locator('#station-count', { hasText: /^\d+ of 13 stations$/ }).waitFor();
      const shown = await page.locator('#station-list li:not([hidden]) .name').allTextContents();
      assert.ok(shown.length > 0 && shown.every((n) => n.toLowerCase().includes('o')), shown.join());
      await page.focus('#station-list');
      await page.keyboard.press('End');
      assert.equal(await activeName(), shown.at(-1));
      await page.keyboard.press('Home');
      assert.equal(await activeName(), shown[0]);
      await page.fill('#search', 'no such station');
      await page.locator('#list-message', { hasText: 'No station’s name contains' }).waitFor();
      await page.fill('#search', '');

      // The period buttons are radio buttons: arrows move between them.
      const aggregate = page.waitForRequest((r) => r.url().includes('/station/aggregate/') && r.url().includes('interval=1800'));
      await page.focus('input[name="period"][value="24h"]');
      await page.keyboard.press('ArrowRight');
      await aggregate;
      assert.equal(await page.locator('input[name="period"]:checked').getAttribute('value'), '7d');
      assert.match(page.url(), new RegExp(`#station=${shown[0]}&period=7d$`));
    } finally {
      await context.close();
    }
  });

  test('axe finds no accessibility violations, on a desktop or a phone, with the table open', async () => {
    for (const [label, viewport, isMobile] of [['desktop', DESKTOP, false], ['phone', PHONE, true]]) {
      const { context, page } = await openHome(server, { viewport, isMobile, hash: '#station=Oslo' });
      try {
        await page.locator('#station-list li').first().waitFor();
        await page.locator('#chart canvas').first().waitFor();
        await chartTable(page);
        // Through the DevTools protocol, which the page's CSP does not govern.
        await page.evaluate(AXE);
        const { violations } = await page.evaluate(() =>
          window.axe.run(document, { resultTypes: ['violations'], runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }),
        );
        for (const v of violations) figure(`axe ${label}: ${v.impact} ${v.id}`, v.nodes.map((n) => n.target.join(' ')).join('; '));
        assert.deepEqual(violations.map((v) => `${v.impact} ${v.id}`), [], `${label}: accessibility violations`);
      } finally {
        await context.close();
      }
    }
  });

  test('survives a server restart and catches up with what happened meanwhile', async () => {
    const { context, page, record } = await openHome(server, { count: CITIES.length + 1 });
    try {
      await page.locator('#connection[data-state="open"]').waitFor();
      // One event seen, so the page has an id to resume from.
      await api.post({ name: 'Cairo', timestamp: now(), temperature: 25.5, lat: 30.04, lon: 31.24 });
      await rowFor(page, 'Cairo').locator('.temp', { hasText: '25.5 °C' }).waitFor({ timeout: 2000 });
      const listsBefore = record.requests.filter((url) => url.includes('/station/latest/')).length;

      let started = Date.now();
      await server.kill();
      await page.locator('#connection[data-state="lost"]', { hasText: 'Connection lost, reconnecting' }).waitFor({ timeout: 15_000 });
      figure('restart: server killed to "reconnecting" shown (ms)', Date.now() - started);

      // Written while the server is down (through the binary's import, straight into the
      // database): only the change log can tell the page about these.
      const t = now();
      server.importReadings([
        { name: 'Cairo', timestamp: t + 1, temperature: 26.6, lat: 30.04, lon: 31.24 },
        { name: 'Atlantis', timestamp: t, temperature: 18.8, lat: 31, lon: -24 },
      ]);
      started = Date.now();
      await server.start();
      await page.locator('#connection[data-state="open"]').waitFor({ timeout: 30_000 });
      figure('restart: server started to stream open again (ms)', Date.now() - started);
      await rowFor(page, 'Atlantis').locator('.temp', { hasText: '18.8 °C' }).waitFor({ timeout: 5000 });
      await rowFor(page, 'Cairo').locator('.temp', { hasText: '26.6 °C' }).waitFor({ timeout: 5000 });
      figure('restart: server started to missed readings shown (ms)', Date.now() - started);

      await api.post({ name: 'Oslo', timestamp: now() + 2, temperature: -1.1, lat: 59.91, lon: 10.75 });
      await rowFor(page, 'Oslo').locator('.temp', { hasText: '-1.1 °C' }).waitFor({ timeout: 2000 });
      // Caught up from the stream (Last-Event-ID / last_event_id), not by re-reading the list.
      assert.equal(record.requests.filter((url) => url.includes('/station/latest/')).length, listsBefore);
      assert.deepEqual(record.pageErrors, []);
    } finally {
      await context.close();
    }
  });

  test('screenshots at desktop and phone widths; nothing wider than a phone', async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    for (const [label, viewport, isMobile] of [['desktop', DESKTOP, false], ['phone', PHONE, true]]) {
      const { context, page } = await openHome(server, { viewport, isMobile, hash: '#station=Oslo' });
      try {
        await page.locator('#station-list li').first().waitFor();
        await page.locator('#chart canvas').first().waitFor();
        await page.waitForTimeout(500); // the outline and the chart's first frame
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `${label}: the page is ${overflow}px wider than the screen`);
        await page.screenshot({ path: join(SCREENSHOTS, `${label}.png`) });
        await page.screenshot({ path: join(SCREENSHOTS, `${label}-full.png`), fullPage: true });
      } finally {
        await context.close();
      }
    }
    figure('screenshots in', SCREENSHOTS);
  });
});

describe('an empty database', () => {
  test('says there are no readings yet, then shows the first one', async () => {
    const server = await new StationServer().start();
    const { context, page, record } = await openHome(server);
    try {
      await page.locator('#list-message', { hasText: 'No readings yet' }).waitFor({ timeout: 10_000 });
      await page.locator('#connection[data-state="open"]').waitFor();
      assert.equal(await page.locator('#station-list').isVisible(), false);
      assert.match(await page.locator('#chart-message').textContent(), /Choose a station/);
      await server.api().post({ name: 'Oslo', timestamp: now(), temperature: 5.5, lat: 59.91, lon: 10.75 });
      await rowFor(page, 'Oslo').locator('.temp', { hasText: '5.5 °C' }).waitFor({ timeout: 2000 });
      assert.equal(await page.locator('#list-message').isVisible(), false);
      assert.deepEqual(record.consoleErrors, []);
    } finally {
      await context.close();
      await server.dispose();
    }
  });
});

describe('who may see the page', () => {
  const servers = [];
  after(async () => {
    for (const s of servers) await s.dispose();
  });

  test('without credentials /home/ is a Basic challenge', async () => {
    const server = await new StationServer().start();
    servers.push(server);
    const { context } = await openContext(browser, { credentials: false });
    try {
      const page = await context.newPage();
      const challenge = page.waitForResponse((r) => r.url() === `${server.origin}/home/`);
      // With no credentials to give, Chromium ends the navigation with an auth error.
      const navigation = await page.goto(`${server.origin}/home/`).then(
        () => 'loaded',
        (error) => error.message,
      );
      const response = await challenge;
      assert.equal(response.status(), 401, navigation);
      assert.match(response.headers()['www-authenticate'] ?? '', /^Basic realm=/);
      assert.equal(await page.locator('#station-list').count(), 0);
      // The page's data is not open either.
      for (const path of ['/home/config.json', '/station/latest/', '/station/stream/']) {
        assert.equal((await fetch(server.origin + path)).status, 401, path);
      }
    } finally {
      await context.close();
    }
  });

  test('with --public-home it loads, live, without credentials', async () => {
    const server = await new StationServer({ publicHome: true }).start();
    servers.push(server);
    const api = server.api();
    await api.post(series(CITIES[0], { end: now(), seconds: 600, step: 60 }));
    const { context, page, record } = await openHome(server, { credentials: false, count: 1 });
    try {
      await page.locator('#connection[data-state="open"]').waitFor();
      await page.locator('#chart canvas').first().waitFor();
      await api.post({ name: 'Bergen', timestamp: now(), temperature: 9.9, lat: 60.39, lon: 5.32 });
      await rowFor(page, 'Bergen').waitFor({ timeout: 2000 });
      assert.deepEqual(record.consoleErrors, []);
    } finally {
      await context.close();
    }
  });

  test('a configured tile URL adds tiles and their attribution, and nothing else leaves', async () => {
    // A tile server of our own on another port stands for OpenStreetMap.
    const png = Buffer.from(
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
      'base64',
    );
    const tilePort = await freePort();
    const tiles = createServer((req, res) => res.writeHead(200, { 'Content-Type': 'image/png' }).end(png));
    await new Promise((done) => tiles.listen(tilePort, '127.0.0.1', done));
    const tileUrl = `http://localhost:${tilePort}/{z}/{x}/{y}.png`;
    const attribution = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors';
    try {
      const server = new StationServer({ tileUrl, extraArgs: ['--map-attribution', attribution] });
      servers.push(server);
      await server.start();
      await server.api().post({ name: 'Oslo', timestamp: now(), temperature: 1, lat: 59.91, lon: 10.75 });
      const { context, page, record } = await openHome(server, { count: 1 });
      try {
        await page.locator('.leaflet-tile-loaded').first().waitFor({ timeout: 10_000 });
        const origins = new Set(record.requests.filter((u) => !u.startsWith('data:')).map((u) => new URL(u).origin));
        assert.deepEqual([...origins].sort(), [new URL(server.origin).origin, `http://localhost:${tilePort}`].sort());
        assert.match(await page.locator('.leaflet-control-attribution').textContent(), /OpenStreetMap contributors/);
        assert.deepEqual(record.consoleErrors, [], 'console errors (a CSP refusal would show here)');
      } finally {
        await context.close();
      }
    } finally {
      tiles.closeAllConnections();
      tiles.close();
    }
  });
});

describe('1,000 stations and 30 days of readings', () => {
  let server;
  const DAYS = 30;
  const STEP = 10;

  before(async () => {
    server = await new StationServer().start();
    const api = server.api();
    const t = now();
    let started = Date.now();
    await api.postMany(manyStations(1000, t));
    // Station 0001 has a month of readings 10 seconds apart: 259,200 of them.
    const first = manyStations(1, t)[0];
    const month = series({ ...CITIES[0], name: first.name, lat: first.lat, lon: first.lon }, { end: t, seconds: DAYS * 86400 - STEP, step: STEP });
    assert.equal(month.length, 259_200);
    figure('setup: 1,000 stations posted (ms)', Date.now() - started);
    started = Date.now();
    await api.postMany(month, 1000);
    figure('setup: 259,200 readings posted in 1,000-reading bodies (ms)', Date.now() - started);
  });
  after(async () => {
    await server?.dispose();
  });

  test('the list shows all, search narrows it, the map has every marker, the 30-day chart draws', async () => {
    const { context, page, record, transfer, loadedMs } = await openHome(server, { count: 1000 });
    try {
      figure('1,000 stations: navigation to all listed (ms)', loadedMs);
      await page.locator('#chart canvas').first().waitFor();
      figure('1,000 stations: first load transferred (KiB, compressed)', (transfer.total() / KIB).toFixed(1));
      assert.equal(await page.locator('#station-list li').count(), 1000);
      assert.equal((await page.locator('#map').evaluate((el) => el.stationMarkers)).length, 1000);

      let started = Date.now();
      await page.fill('#search', 'Station 09');
      await page.locator('#station-count', { hasText: /^100 of 1,000 stations$/ }).waitFor();
      figure('1,000 stations: search narrowed to 100 (ms)', Date.now() - started);
      assert.equal(await page.locator('#station-list li:not([hidden])').count(), 100);
      await page.fill('#search', '');
      await page.locator('#station-count', { hasText: /^1,000 stations$/ }).waitFor();

      started = Date.now();
      await page.selectOption('#sort', '-temperature');
      await page.waitForFunction(() => {
        const temps = [...document.querySelectorAll('#station-list li .temp')].slice(0, 50).map((el) => parseFloat(el.textContent.replace('−', '-')));
        return temps.every((t, i) => i === 0 || temps[i - 1] >= t);
      });
      figure('1,000 stations: sorted by temperature (ms)', Date.now() - started);

      // The charted station is Station 0001 (first by name): its month, in hourly buckets.
      await page.locator('#chart-heading', { hasText: 'Temperature at Station 0001' }).waitFor();
      await page.locator('#chart canvas').first().waitFor();
      started = Date.now();
      await page.locator('.periods label', { hasText: '30 days' }).click();
      await page.locator('#chart-summary', { hasText: /^Station 0001, the last 30 days: 259,\d{3} readings in 72\d periods of 1 hour/ }).waitFor({ timeout: 30_000 });
      figure('30 days: period chosen to chart drawn (ms)', Date.now() - started);
      const canvas = await page.locator('#chart canvas').first().boundingBox();
      assert.ok(canvas.width > 300 && canvas.height > 100);
      started = Date.now();
      const table = await chartTable(page);
      figure('30 days: table of buckets rendered (ms, rows)', `${Date.now() - started}, ${table.length}`);
      assert.ok(table.length >= 720);

      // The page stays responsive: a frame within a few hundred ms while 1,000 stations age.
      const frame = await page.evaluate(() => new Promise((done) => {
        const t0 = performance.now();
        requestAnimationFrame(() => done(performance.now() - t0));
      }));
      figure('1,000 stations: time to next animation frame (ms)', frame.toFixed(1));
      await page.screenshot({ path: join(SCREENSHOTS, 'desktop-1000-stations.png') });
      assert.deepEqual(record.consoleErrors, []);
    } finally {
      await context.close();
    }
  });
});
