// The /home/ page: each station's latest reading on a list and a map, and a temperature chart
// of the chosen one, all kept current from the event stream.
//
// Consistency, in short: the stream is opened first and the latest list read after it
// opens, so no change can fall between the two; events that arrive while a list is being
// read are held and applied on top of it (merging by timestamp, then id, makes replaying an
// event the list already reflects harmless). After a lost connection the stream resumes from
// the last event id, so only a stream that never delivered an id needs the list read again,
// and a `reset` event (the server no longer has the changes we missed) reads it again too.

import { readConfig, readLatest } from './api.js';
import { DEFAULT_PERIOD, PERIODS, TemperatureChart } from './chart.js';
import { StationList } from './list.js';
import { LiveStream } from './live.js';
import { StationMap } from './map.js';
import { LatestStore } from './store.js';
// Last, so the page's rules come after Leaflet's and uPlot's and win ties.
import './style.css';

const $ = (id) => document.getElementById(id);
// Without an open stream the list is still read after this long, then again once it opens.
const STREAM_PATIENCE_MS = 3000;
const RESYNC_RETRY_MS = 5000;
const CHART_SELECT_DELAY_MS = 200;

const CONNECTION_TEXT = {
  connecting: 'Connecting…',
  open: 'Live',
  lost: 'Connection lost, reconnecting…',
};

function setConnection(state) {
  const el = $('connection');
  el.dataset.state = state;
  el.textContent = CONNECTION_TEXT[state];
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const period = params.get('period');
  return { station: params.get('station'), period: period in PERIODS ? period : DEFAULT_PERIOD };
}

function writeHash(station, period) {
  const params = new URLSearchParams();
  if (station !== null) params.set('station', station);
  if (period !== DEFAULT_PERIOD) params.set('period', period);
  history.replaceState(null, '', `#${params}`);
}

// Events that arrive before the page's parts exist are held here; the stream is opened
// before anything else so that none is missed.
const early = [];
let handleEvent = (type, data) => early.push([type, data]);
let handleOpen = null;
let openedEarly = null;
const stream = new LiveStream('/station/stream/', {
  onEvent: (type, data) => handleEvent(type, data),
  onOpen: (info) => (handleOpen ? handleOpen(info) : (openedEarly = info)),
  onState: setConnection,
});
setConnection('connecting');
stream.start();

async function start() {
  const config = await readConfig();
  const interval = Number(config.reading_interval_seconds) > 0 ? Number(config.reading_interval_seconds) : 10;
  const lateAfterSeconds = 3 * interval;
  const initial = readHash();
  let selected = initial.station;
  let period = initial.period;
  for (const input of document.querySelectorAll('input[name="period"]')) input.checked = input.value === period;

  const store = new LatestStore(async (name) => (await readLatest(name))[0] ?? null);
  const chart = new TemperatureChart({
    container: $('chart'),
    heading: $('chart-heading'),
    message: $('chart-message'),
    summary: $('chart-summary'),
    details: $('chart-table'),
    tbody: document.querySelector('#chart-table tbody'),
    caption: $('chart-table-caption'),
  });

  let chartTimer = null;
  function select(name, from) {
    selected = name;
    list.select(name, { reveal: from !== 'list' });
    map.select(name, { reveal: from !== 'map' });
    writeHash(selected, period);
    // Holding an arrow key walks the list quickly; only where it stops is charted.
    clearTimeout(chartTimer);
    chartTimer = setTimeout(() => chart.show(name, period, store.get(name) ?? null), from === 'list' ? CHART_SELECT_DELAY_MS : 0);
  }

  const list = new StationList({
    list: $('station-list'),
    search: $('search'),
    sort: $('sort'),
    count: $('station-count'),
    message: $('list-message'),
    lateAfterSeconds,
    onSelect: (name) => select(name, 'list'),
  });
  const map = new StationMap($('map'), {
    tileUrl: config.map_tile_url,
    attribution: config.map_attribution,
    lateAfterSeconds,
    onSelect: (name) => select(name, 'map'),
  });

  store.subscribe((event) => {
    if (event.type === 'reset') {
      const readings = [...store.values()];
      list.reset(readings);
      map.reset(readings);
      if (selected === null && readings.length > 0) {
        // Something to look at straight away: the first station as the list is sorted.
        select(list.visibleRows()[0].reading.name, 'init');
      } else if (selected !== null) {
        list.select(selected, { reveal: true });
        map.select(selected);
      }
    } else {
      list.update(event.name, event.reading, event.live);
      map.update(event.name, event.reading);
    }
  });

  document.querySelector('.periods').addEventListener('change', (event) => {
    period = event.target.value;
    writeHash(selected, period);
    if (selected !== null) chart.show(selected, period, store.get(selected) ?? null);
  });

  // Reading the whole latest list, with the stream's events held meanwhile (and before the
  // first read, when there is nothing to apply them to).
  let held = [];
  let syncing = false;
  let syncAgain = false;
  let synced = false;
  let retryTimer = null;
  async function resync() {
    if (syncing) {
      syncAgain = true;
      return;
    }
    syncing = true;
    held = held ?? [];
    clearTimeout(retryTimer);
    try {
      store.reset(await readLatest());
      synced = true;
    } catch (error) {
      console.warn('station-api: the latest readings could not be read', error);
      if (!synced) $('list-message').textContent = `The stations could not be read (${error.message}); trying again…`;
      retryTimer = setTimeout(resync, RESYNC_RETRY_MS);
    } finally {
      const events = held;
      held = null;
      syncing = false;
      for (const [type, data] of events) store.apply(type, data);
      if (syncAgain) {
        syncAgain = false;
        resync();
      }
    }
  }

  handleEvent = (type, data) => {
    if (type === 'reset') {
      resync();
      chart.invalidate();
      return;
    }
    // The chart keeps its own consistency (it re-fetches when readings race its fetch).
    if (type === 'created') chart.addReading(data);
    else chart.invalidate();
    if (held) held.push([type, data]);
    else store.apply(type, data);
  };
  handleOpen = ({ resumed }) => {
    if (!resumed || !synced) resync();
  };

  for (const [type, data] of early.splice(0)) handleEvent(type, data);
  if (openedEarly) handleOpen(openedEarly);
  setTimeout(() => !synced && !syncing && resync(), STREAM_PATIENCE_MS);

  if (selected !== null) select(selected, 'init');

  // Ages, lateness and the chart's sliding period follow the clock.
  let ticks = 0;
  setInterval(() => {
    list.tick();
    if (ticks % 5 === 0) {
      map.tick();
      chart.tick();
    }
    ticks += 1;
  }, 1000);
}

start().catch((error) => {
  console.error('station-api: the page could not start', error);
  $('list-message').textContent = `The page could not start: ${error.message}`;
});
