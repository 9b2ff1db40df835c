// The list of stations: a single-select listbox (one Tab stop; arrow keys, Home, End, Page
// Up/Down move and choose), searchable and sortable.
//
// Every station has one <li>, made once and then only edited: a live reading rewrites a few
// text nodes of one row, a sort moves only the rows that are out of place, and a search
// toggles `hidden`. With `content-visibility: auto` (style.css) rows off screen cost no
// layout, so 1,000 stations stay cheap without a virtual list and its accessibility costs.

import { formatAgo, formatPosition, formatTemperature, nowSeconds, temperatureColour } from './format.js';

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
const countFormat = new Intl.NumberFormat();
const byName = (a, b) => collator.compare(a.reading.name, b.reading.name);
const COMPARATORS = {
  name: byName,
  '-name': (a, b) => byName(b, a),
  temperature: (a, b) => a.reading.temperature - b.reading.temperature || byName(a, b),
  '-temperature': (a, b) => b.reading.temperature - a.reading.temperature || byName(a, b),
  timestamp: (a, b) => a.reading.timestamp - b.reading.timestamp || byName(a, b),
  '-timestamp': (a, b) => b.reading.timestamp - a.reading.timestamp || byName(a, b),
};
// A live reading can change a row's place; re-sorting on every one of 100 readings a second
// would make the list jump, so it happens at most this often.
const RESORT_EVERY_MS = 1000;
const PAGE_ROWS = 10;

let nextRowId = 0;

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

// A brief background flash on a row whose reading changed. The Web Animations API restarts
// cleanly when readings come quickly and needs no forced style recalculation; the class lets
// tests and assistive styles see it.
export function flash(el) {
  el.flashAnimation?.cancel();
  el.classList.add('changed');
  const animation = el.animate(
    [{ backgroundColor: 'rgba(255, 213, 79, 0.85)' }, { backgroundColor: 'rgba(255, 213, 79, 0)' }],
    { duration: 2000, easing: 'ease-out' },
  );
  el.flashAnimation = animation;
  animation.onfinish = () => {
    if (el.flashAnimation === animation) el.classList.remove('changed');
  };
}

export class StationList {
  constructor({ list, search, sort, count, message, lateAfterSeconds, onSelect }) {
    this.list = list;
    this.search = search;
    this.sort = sort;
    this.count = count;
    this.message = message;
    this.lateAfterSeconds = lateAfterSeconds;
    this.onSelect = onSelect;
    this.rows = new Map(); // name -> row
    this.selected = null;
    this.active = null; // the row keyboard focus is on (aria-activedescendant)
    this.loaded = false;
    this.query = '';
    this.resortTimer = null;

    search.addEventListener('input', () => this.filter());
    sort.addEventListener('change', () => this.resort());
    list.addEventListener('keydown', (event) => this.keydown(event));
    list.addEventListener('click', (event) => {
      const el = event.target.closest('[role="option"]');
      if (el) this.choose(el.row, { scroll: false });
    });
    list.addEventListener('focus', () => {
      if (!this.active || this.active.el.hidden) this.activate(this.selectedRow() ?? this.visibleRows()[0]);
    });
  }

  selectedRow() {
    return this.selected === null ? undefined : this.rows.get(this.selected);
  }

  // A whole new list.
  reset(readings) {
    this.loaded = true;
    const fragment = document.createDocumentFragment();
    const keep = new Set();
    for (const reading of readings) {
      keep.add(reading.name);
      let row = this.rows.get(reading.name);
      if (!row) {
        row = this.makeRow(reading);
        this.rows.set(reading.name, row);
        fragment.append(row.el);
      }
      this.fill(row, reading);
    }
    for (const [name, row] of this.rows) if (!keep.has(name)) this.drop(name, row);
    this.list.append(fragment);
    this.resort();
  }

  // One station's reading changed (reading null: the station has no readings left).
  update(name, reading, live) {
    let row = this.rows.get(name);
    if (!reading) {
      if (row) {
        this.drop(name, row);
        this.applyFilter(false);
      }
      return;
    }
    const added = !row;
    if (added) {
      row = this.makeRow(reading);
      this.rows.set(name, row);
      this.list.append(row.el);
    }
    this.fill(row, reading);
    if (live) flash(row.el);
    if (added) this.applyFilter(false);
    if (added || !this.sort.value.endsWith('name')) this.scheduleResort();
  }

  scheduleResort() {
    if (this.resortTimer !== null) return;
    this.resortTimer = setTimeout(() => {
      this.resortTimer = null;
      this.resort();
    }, RESORT_EVERY_MS);
  }

  makeRow(reading) {
    const el = element('li', 'station');
    el.id = `station-${nextRowId++}`;
    el.setAttribute('role', 'option');
    el.setAttribute('aria-selected', 'false');
    const swatch = element('span', 'swatch');
    swatch.setAttribute('aria-hidden', 'true');
    const row = {
      el,
      swatch,
      name: element('span', 'name', reading.name),
      temperature: element('span', 'temp num'),
      ago: element('span', 'ago num'),
      position: element('span', 'pos'),
      late: element('span', 'badge', 'late'),
      reading,
      agoText: '',
      isLate: null,
    };
    row.late.hidden = true;
    el.row = row;
    el.append(swatch, row.name, row.temperature, row.ago, row.late, row.position);
    return row;
  }

  fill(row, reading) {
    const previous = row.reading;
    row.reading = reading;
    if (row.temperature.textContent === '' || previous.temperature !== reading.temperature) {
      row.temperature.textContent = formatTemperature(reading.temperature);
      row.swatch.style.backgroundColor = temperatureColour(reading.temperature);
    }
    const position = formatPosition(reading.lat, reading.lon);
    if (row.position.textContent !== position) row.position.textContent = position;
    row.agoText = '';
    this.refreshAge(row, nowSeconds());
  }

  drop(name, row) {
    if (this.active === row) this.active = null;
    row.el.remove();
    this.rows.delete(name);
  }

  // "how long ago" and lateness, every second.
  tick() {
    const now = nowSeconds();
    for (const row of this.rows.values()) this.refreshAge(row, now);
  }

  refreshAge(row, now) {
    const text = formatAgo(row.reading.timestamp, now);
    if (text !== row.agoText) {
      row.agoText = text;
      row.ago.textContent = text;
    }
    const late = now - row.reading.timestamp > this.lateAfterSeconds;
    if (late !== row.isLate) {
      row.isLate = late;
      row.el.classList.toggle('late', late);
      row.late.hidden = !late;
    }
  }

  resort() {
    const compare = COMPARATORS[this.sort.value] ?? byName;
    const sorted = [...this.rows.values()].sort(compare);
    // Move only rows that are out of place, so the common case (nothing moved) costs no DOM
    // work and the focused row keeps its place on screen.
    let cursor = this.list.firstElementChild;
    for (const row of sorted) {
      if (row.el === cursor) cursor = cursor.nextElementSibling;
      else this.list.insertBefore(row.el, cursor);
    }
    this.applyFilter(true);
  }

  filter() {
    this.query = this.search.value.trim().toLocaleLowerCase();
    this.applyFilter(true);
  }

  applyFilter(all) {
    let shown = 0;
    for (const row of this.rows.values()) {
      const hide = this.query !== '' && !row.reading.name.toLocaleLowerCase().includes(this.query);
      if (all || row.el.hidden !== hide) row.el.hidden = hide;
      if (!hide) shown += 1;
    }
    const total = this.rows.size;
    const stations = total === 1 ? 'station' : 'stations';
    // Only real changes are written: the count is a live region, and rewriting the same
    // words would have a screen reader repeat them with every reading.
    setText(
      this.count,
      shown === total ? `${countFormat.format(total)} ${stations}` : `${countFormat.format(shown)} of ${countFormat.format(total)} ${stations}`,
    );
    let message = '';
    if (!this.loaded) message = 'Loading stations…';
    else if (total === 0) message = 'No readings yet. Stations appear here as soon as one posts a reading.';
    else if (shown === 0) message = `No station’s name contains “${this.search.value.trim()}”.`;
    setText(this.message, message);
    this.message.hidden = message === '';
    this.list.hidden = total === 0;
    if (this.active?.el.hidden) this.activate(null);
  }

  visibleRows() {
    const rows = [];
    for (const el of this.list.children) if (!el.hidden) rows.push(el.row);
    return rows;
  }

  activate(row, { scroll = true } = {}) {
    this.active?.el.classList.remove('active');
    this.active = row ?? null;
    if (!row) {
      this.list.removeAttribute('aria-activedescendant');
      return;
    }
    row.el.classList.add('active');
    this.list.setAttribute('aria-activedescendant', row.el.id);
    if (scroll) this.scrollTo(row);
  }

  // Only the list scrolls: scrollIntoView would also scroll the page, which on a phone would
  // jump away from the map when a station is chosen there.
  scrollTo(row) {
    const { list } = this;
    const top = row.el.offsetTop;
    const bottom = top + row.el.offsetHeight;
    if (top < list.scrollTop) list.scrollTop = top;
    else if (bottom > list.scrollTop + list.clientHeight) list.scrollTop = bottom - list.clientHeight;
  }

  choose(row, options) {
    if (!row) return;
    this.activate(row, options);
    this.select(row.reading.name);
    this.onSelect(row.reading.name);
  }

  // Mark a station as the chosen one (also when chosen on the map).
  select(name, { reveal = false } = {}) {
    const previous = this.selectedRow();
    if (previous) {
      previous.el.setAttribute('aria-selected', 'false');
      previous.el.classList.remove('selected');
    }
    this.selected = name;
    const row = this.selectedRow();
    if (row) {
      row.el.setAttribute('aria-selected', 'true');
      row.el.classList.add('selected');
      if (reveal && !row.el.hidden) this.activate(row);
    }
  }

  keydown(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const rows = this.visibleRows();
    if (rows.length === 0) return;
    const at = this.active ? rows.indexOf(this.active) : -1;
    let target;
    switch (event.key) {
      case 'ArrowDown':
        target = rows[Math.min(rows.length - 1, at + 1)];
        break;
      case 'ArrowUp':
        target = rows[Math.max(0, at - 1)];
        break;
      case 'Home':
        target = rows[0];
        break;
      case 'End':
        target = rows[rows.length - 1];
        break;
      case 'PageDown':
        target = rows[Math.min(rows.length - 1, Math.max(0, at) + PAGE_ROWS)];
        break;
      case 'PageUp':
        target = rows[Math.max(0, at - PAGE_ROWS)];
        break;
      case 'Enter':
      case ' ':
        target = this.active ?? rows[0];
        break;
      default:
        return;
    }
    event.preventDefault();
    this.choose(target);
  }
}
