// The temperature chart of the chosen station: min, mean and max per time bucket from
// /station/aggregate/, then kept going from the stream, so it never polls.
//
// The buckets are held as a full grid (one slot per bucket in the period, null where there
// was no reading), so a live reading lands in its slot by arithmetic, gaps show as gaps, and
// the grid slides forward with the clock. The same numbers are offered as a table.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { readAggregate } from './api.js';
import { formatDateTime, formatNumber, formatTemperature, nowSeconds } from './format.js';

// Bucket sizes keep every period to a few hundred points: enough for the chart's width,
// cheap to draw and far under the server's 10,000-bucket limit.
export const PERIODS = {
  '1h': { seconds: 3600, interval: 60, text: 'the last hour', bucket: '1 minute' },
  '24h': { seconds: 86400, interval: 300, text: 'the last 24 hours', bucket: '5 minutes' },
  '7d': { seconds: 7 * 86400, interval: 1800, text: 'the last 7 days', bucket: '30 minutes' },
  '30d': { seconds: 30 * 86400, interval: 3600, text: 'the last 30 days', bucket: '1 hour' },
};
export const DEFAULT_PERIOD = '24h';

// Readings of the station that arrive while its buckets are being fetched may or may not be
// in the answer; rather than guess, the buckets are fetched again (at most this many times).
const MAX_REFETCHES = 3;
const REDRAW_TEXT_EVERY_MS = 1000;
// Below this many filled buckets, draw each as a dot too: isolated buckets have no line.
const DOTS_BELOW = 150;

export class TemperatureChart {
  constructor({ container, heading, message, summary, details, tbody, caption }) {
    this.container = container;
    this.heading = heading;
    this.message = message;
    this.summary = summary;
    this.details = details;
    this.tbody = tbody;
    this.caption = caption;
    this.name = null;
    this.period = DEFAULT_PERIOD;
    this.plot = null;
    this.grid = null;
    this.abort = null;
    this.loading = false;
    this.missed = false;
    this.reloadTimer = null;
    this.textTimer = null;
    this.redrawQueued = false;
    this.latest = null; // the station's latest reading, for the "no data in period" text

    details.addEventListener('toggle', () => details.open && this.renderTable());
    // The container itself is hidden while there is nothing to draw; its panel is not.
    new ResizeObserver(() => this.resize()).observe(container.parentElement);
  }

  show(name, period = this.period, latest = null) {
    this.name = name;
    this.period = period;
    this.latest = latest;
    this.heading.textContent = name === null ? 'Temperature' : `Temperature at ${name}`;
    this.load();
  }

  async load() {
    this.abort?.abort();
    clearTimeout(this.reloadTimer);
    if (this.name === null) {
      this.grid = null;
      this.setMessage('Choose a station to see its temperatures.');
      this.draw({ textNow: true });
      return;
    }
    const abort = new AbortController();
    this.abort = abort;
    this.loading = true;
    this.container.setAttribute('aria-busy', 'true');
    if (!this.currentGrid()) {
      // Another station's or period's chart must not stand under this one's heading.
      this.container.hidden = true;
      this.setMessage('Loading temperatures…');
    }
    for (let attempt = 0; ; attempt += 1) {
      this.missed = false;
      const { seconds, interval } = PERIODS[this.period];
      const now = nowSeconds();
      const first = Math.floor((now - seconds) / interval) * interval;
      const last = Math.floor(now / interval) * interval;
      let buckets;
      try {
        buckets = await readAggregate({ name: this.name, from: first, to: last + interval, interval, signal: abort.signal });
      } catch (error) {
        if (abort.signal.aborted) return;
        this.loading = false;
        this.container.removeAttribute('aria-busy');
        this.setMessage(`The temperatures could not be loaded (${error.message}). They are tried again with the next reading.`);
        return;
      }
      if (abort.signal.aborted) return;
      this.grid = makeGrid(this.name, this.period, first, last, interval, buckets);
      if (!this.missed || attempt + 1 >= MAX_REFETCHES) break;
    }
    this.loading = false;
    this.container.removeAttribute('aria-busy');
    this.draw({ textNow: true });
  }

  // A reading from the stream.
  addReading(reading) {
    if (reading.name !== this.name) return;
    this.latest = reading;
    if (this.loading) {
      this.missed = true;
      return;
    }
    const grid = this.currentGrid();
    if (!grid) {
      // The last load failed: this reading is a good moment to try again.
      this.load();
      return;
    }
    this.slide(nowSeconds());
    const slot = Math.floor(reading.timestamp / grid.interval) * grid.interval;
    const i = (slot - grid.xs[0]) / grid.interval;
    if (i < 0 || i >= grid.xs.length) return; // outside the period (an old or future timestamp)
    const t = reading.temperature;
    const n = grid.counts[i];
    grid.counts[i] = n + 1;
    grid.mins[i] = n === 0 ? t : Math.min(grid.mins[i], t);
    grid.maxs[i] = n === 0 ? t : Math.max(grid.maxs[i], t);
    grid.means[i] = n === 0 ? t : grid.means[i] + (t - grid.means[i]) / (n + 1);
    this.queueRedraw();
  }

  // An update or delete somewhere: the stream does not say which station's buckets it
  // changed (a delete names only the id), so the chart is fetched again, once per burst.
  invalidate() {
    if (this.name === null) return;
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.load(), 1000);
  }

  // Called every few seconds: the period ends now, so buckets fall off the start and empty
  // ones are added at the end.
  tick() {
    if (this.currentGrid() && !this.loading && this.slide(nowSeconds())) this.queueRedraw();
  }

  slide(now) {
    const grid = this.grid;
    const { seconds, interval } = PERIODS[grid.period];
    const first = Math.floor((now - seconds) / interval) * interval;
    const last = Math.floor(now / interval) * interval;
    let moved = false;
    while (grid.xs[grid.xs.length - 1] < last) {
      grid.xs.push(grid.xs[grid.xs.length - 1] + interval);
      for (const column of [grid.counts, grid.mins, grid.means, grid.maxs]) column.push(column === grid.counts ? 0 : null);
      moved = true;
    }
    while (grid.xs.length > 0 && grid.xs[0] < first) {
      for (const column of [grid.xs, grid.counts, grid.mins, grid.means, grid.maxs]) column.shift();
      moved = true;
    }
    return moved;
  }

  queueRedraw() {
    if (this.redrawQueued) return;
    this.redrawQueued = true;
    requestAnimationFrame(() => {
      this.redrawQueued = false;
      this.draw();
    });
  }

  setMessage(text) {
    this.message.textContent = text;
    this.message.hidden = text === '';
  }

  // The buckets of the chosen station and period; null while they load.
  currentGrid() {
    const grid = this.grid;
    return grid && grid.name === this.name && grid.period === this.period ? grid : null;
  }

  filledBuckets() {
    const grid = this.currentGrid();
    return grid ? grid.counts.reduce((sum, c) => sum + (c > 0 ? 1 : 0), 0) : 0;
  }

  draw({ textNow = false } = {}) {
    // Only the chosen station's and period's buckets are drawn, never those of the last choice
    // while the new one loads.
    const grid = this.currentGrid();
    const filled = this.filledBuckets();
    const { text } = PERIODS[this.period];
    if (this.name !== null && grid && !this.loading) {
      if (filled === 0) {
        const latest = this.latest ? ` Its latest reading is from ${formatDateTime(this.latest.timestamp)}.` : '';
        this.setMessage(`No readings from ${this.name} in ${text}.${latest}`);
      } else {
        this.setMessage('');
      }
    }
    this.container.hidden = !grid || filled === 0;
    if (grid && filled > 0) {
      const data = [grid.xs, grid.mins, grid.means, grid.maxs];
      if (!this.plot) {
        this.plot = new uPlot(this.options(), data, this.container);
      } else {
        this.plot.setData(data);
      }
    }
    // The text alternatives follow a new load at once, and live readings at most once a
    // second: a busy station would otherwise rebuild a 720-row table ten times a second.
    if (textNow) {
      clearTimeout(this.textTimer);
      this.textTimer = null;
      this.renderText();
    } else if (this.textTimer === null) {
      this.textTimer = setTimeout(() => {
        this.textTimer = null;
        this.renderText();
      }, REDRAW_TEXT_EVERY_MS);
    }
  }

  renderText() {
    this.renderSummary();
    if (this.details.open) this.renderTable();
  }

  options() {
    const dots = () => this.filledBuckets() < DOTS_BELOW;
    return {
      width: this.width(),
      height: this.height(),
      scales: {
        x: {
          time: true,
          // Always the whole period up to now, however few buckets have readings.
          range: () => {
            const now = nowSeconds();
            return [now - PERIODS[this.period].seconds, now];
          },
        },
      },
      axes: [{}, { label: '°C', size: 50 }],
      series: [
        { label: 'Time', value: (u, v) => (v == null ? '–' : formatDateTime(v)) },
        { label: 'Min', stroke: '#4a78c2', width: 1, points: { show: dots }, value: (u, v) => formatTemp(v) },
        { label: 'Mean', stroke: '#b3261e', width: 2, points: { show: dots }, value: (u, v) => formatTemp(v) },
        { label: 'Max', stroke: '#e07b39', width: 1, points: { show: dots }, value: (u, v) => formatTemp(v) },
      ],
      // The area between max (series 3) and min (series 1).
      bands: [{ series: [3, 1], fill: 'rgba(224, 123, 57, 0.18)' }],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
  }

  width() {
    return Math.max(200, this.container.parentElement.clientWidth - 2);
  }

  height() {
    return window.matchMedia('(max-width: 600px)').matches ? 220 : 280;
  }

  resize() {
    if (this.plot) {
      const width = this.width();
      if (width !== this.plot.width) this.plot.setSize({ width, height: this.height() });
    }
  }

  renderSummary() {
    const grid = this.currentGrid();
    if (!grid || this.filledBuckets() === 0) {
      this.summary.textContent = '';
      return;
    }
    let low = Infinity;
    let high = -Infinity;
    let readings = 0;
    let lastMean = null;
    for (let i = 0; i < grid.xs.length; i += 1) {
      if (grid.counts[i] === 0) continue;
      low = Math.min(low, grid.mins[i]);
      high = Math.max(high, grid.maxs[i]);
      readings += grid.counts[i];
      lastMean = grid.means[i];
    }
    const { text, bucket } = PERIODS[grid.period];
    this.summary.textContent =
      `${this.name}, ${text}: ${readings.toLocaleString()} readings in ${this.filledBuckets().toLocaleString()} ` +
      `periods of ${bucket}; lowest ${formatTemperature(low)}, highest ${formatTemperature(high)}, ` +
      `latest mean ${formatTemperature(lastMean)}.`;
  }

  renderTable() {
    const grid = this.currentGrid();
    const rows = [];
    if (grid) {
      for (let i = 0; i < grid.xs.length; i += 1) {
        if (grid.counts[i] === 0) continue;
        const tr = document.createElement('tr');
        tr.dataset.start = String(grid.xs[i]);
        const cells = [
          formatDateTime(grid.xs[i]),
          grid.counts[i].toLocaleString(),
          formatNumber(grid.mins[i]),
          formatNumber(grid.means[i]),
          formatNumber(grid.maxs[i]),
        ];
        cells.forEach((text, column) => {
          const cell = document.createElement(column === 0 ? 'th' : 'td');
          if (column === 0) cell.scope = 'row';
          else cell.className = 'num';
          cell.textContent = text;
          tr.append(cell);
        });
        rows.push(tr);
      }
      const { text, bucket } = PERIODS[grid.period];
      this.caption.textContent = `Temperatures at ${this.name} in ${text}, per ${bucket}, oldest first (${rows.length.toLocaleString()} rows)`;
    } else {
      this.caption.textContent = this.name === null ? 'No station chosen' : 'Loading…';
    }
    this.tbody.replaceChildren(...rows);
  }
}

function formatTemp(value) {
  return value == null ? '–' : formatTemperature(value);
}

function makeGrid(name, period, first, last, interval, buckets) {
  const size = (last - first) / interval + 1;
  const grid = {
    name,
    period,
    interval,
    xs: Array.from({ length: size }, (_, i) => first + i * interval),
    counts: new Array(size).fill(0),
    mins: new Array(size).fill(null),
    means: new Array(size).fill(null),
    maxs: new Array(size).fill(null),
  };
  for (const bucket of buckets) {
    const i = (bucket.start - first) / interval;
    if (!Number.isInteger(i) || i < 0 || i >= size) continue;
    grid.counts[i] = bucket.count;
    grid.mins[i] = bucket.min;
    grid.means[i] = bucket.mean;
    grid.maxs[i] = bucket.max;
  }
  return grid;
}
