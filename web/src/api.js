// Reading the API. Every request is same-origin: the browser adds the Basic credentials it
// already holds for the page (or none, when the server runs with --public-home).

export class HttpError extends Error {
  constructor(status, path) {
    super(`HTTP ${status} from ${path}`);
    this.status = status;
  }
}

// DRF's `next` links are absolute, built from the request's Host (and, behind a proxy, maybe
// another scheme). Only the path and query are kept, so paging never leaves the page's origin.
const sameOrigin = (link) => {
  const url = new URL(link, location.href);
  return url.pathname + url.search;
};

export async function getJSON(path, { signal } = {}) {
  const response = await fetch(path, {
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
    signal,
  });
  if (!response.ok) throw new HttpError(response.status, path);
  return response.json();
}

// Every result of a paginated list, following `next` until it is null.
export async function readAllPages(path, options) {
  const results = [];
  for (let next = path; next; ) {
    const page = await getJSON(next, options);
    results.push(...page.results);
    next = page.next ? sameOrigin(page.next) : null;
  }
  return results;
}

// Each station's newest reading (optionally one station's).
export function readLatest(name) {
  const query = new URLSearchParams({ page_size: '1000' });
  if (name !== undefined) query.set('name', name);
  return readAllPages(`/station/latest/?${query}`);
}

const DEFAULT_CONFIG = { map_tile_url: null, map_attribution: null, reading_interval_seconds: 10 };

export async function readConfig() {
  try {
    return { ...DEFAULT_CONFIG, ...(await getJSON('/home/config.json')) };
  } catch (error) {
    // The page still works without it: no tiles, the default interval.
    console.warn('station-api: /home/config.json could not be read; using defaults', error);
    return { ...DEFAULT_CONFIG };
  }
}

// Temperature buckets of one station: [{start, count, min, max, mean}], oldest first,
// empty buckets left out.
export async function readAggregate({ name, from, to, interval, signal }) {
  const query = new URLSearchParams({
    name,
    timestamp__gte: String(from),
    timestamp__lt: String(to),
    interval: String(interval),
  });
  const body = await getJSON(`/station/aggregate/?${query}`, { signal });
  return body.results;
}
