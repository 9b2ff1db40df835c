// Drives a live station-api through the generated TypeScript client, and nothing else.
//
// Covers what an SDK user does: basic auth; create the textbook's reading; list every page by
// following `next`; filter and order the list (django-filter's lookups); walk it by cursor, both
// ways; retrieve; replace (PUT); change (PATCH); delete; and one of each error body (400 field
// errors, 400 query parameter errors, 401, 404) as the client's typed error models. Exits
// non-zero on the first failed check. Generate the client first with `sdk/generate.sh`, then
// `npm run build`.
//
// Usage: STATION_URL=http://127.0.0.1:8000 STATION_USERNAME=admin STATION_PASSWORD=... \
//            node build/src/check_client.js

import { randomBytes } from 'node:crypto';

import { createClient, createConfig } from '../generated/client/index.js';
import {
  apiRoot,
  createStation,
  createToken,
  destroyStation,
  destroyToken,
  listStations,
  partialUpdateStation,
  retrieveStation,
  updateStation,
} from '../generated/sdk.gen.js';
import type {
  ErrorDetail,
  ListStationsData,
  PaginatedStationList,
  QueryParameterErrors,
  Station,
  StationInput,
  ValidationErrors,
} from '../generated/types.gen.js';

const PAGE_SIZE = 10;
const EXTRA_READINGS = 2 * PAGE_SIZE; // with the textbook's, at least three pages
// The extra readings' names carry this run's tag, so the filters below select exactly them even
// on a server that holds other readings (or leftovers of an interrupted run).
const RUN_TAG = `sdk-typescript-${randomBytes(4).toString('hex')}`;
const FIRST_TIMESTAMP = 1393926310; // reading n has FIRST_TIMESTAMP + n and temperature 20 + n / 10
const CURSOR_PAGE_SIZE = 6; // 20 readings: pages of 6, 6, 6 and 2
const TEXTBOOK: StationInput = {
  name: 'CityName',
  timestamp: 1393926310,
  temperature: 28,
  lat: 30.733315,
  lon: 76.779418,
};

class CheckFailed extends Error {}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) {
    throw new CheckFailed(message);
  }
}

/** What every generated function resolves to when `throwOnError` is off. */
type Outcome<T, E> = { data: T | undefined; error: E | undefined; response: Response };

/** The body of a successful `outcome`, which must have `status`. */
function success<T, E>(outcome: Outcome<T, E>, status: number): T {
  check(
    outcome.response.status === status && outcome.data !== undefined,
    `expected ${status}, got ${outcome.response.status}: ${JSON.stringify(outcome.error)}`,
  );
  return outcome.data;
}

/** A create's answer (one reading, or a bulk upload's array) for a single reading. */
function one(created: Station | Station[]): Station {
  check(!Array.isArray(created), `a single create answered an array: ${JSON.stringify(created)}`);
  return created as Station;
}

/** The error body of a failed `outcome`, which must have `status`. */
function failure<T, E>(outcome: Outcome<T, E>, status: number): E {
  check(
    outcome.response.status === status && outcome.error !== undefined,
    `expected ${status}, got ${outcome.response.status}: ${JSON.stringify(outcome.data)}`,
  );
  return outcome.error;
}

/** Narrows a 400 body (`ErrorDetail | ValidationErrors`) to field errors. */
function isValidationErrors(body: ErrorDetail | ValidationErrors): body is ValidationErrors {
  return !('detail' in body);
}

/** A list request's 400 body: at least one parameter, each with a list of messages. */
function isQueryParameterErrors(body: unknown): body is QueryParameterErrors {
  return (
    typeof body === 'object' &&
    body !== null &&
    !Array.isArray(body) &&
    Object.keys(body).length > 0 &&
    Object.values(body).every(
      (messages: unknown) =>
        Array.isArray(messages) && messages.every((message) => typeof message === 'string'),
    )
  );
}

function isErrorDetail(body: unknown): body is ErrorDetail {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as { detail?: unknown }).detail === 'string'
  );
}

function sameReading(station: Station, expected: StationInput): boolean {
  return (
    station.name === expected.name &&
    station.timestamp === expected.timestamp &&
    station.temperature === expected.temperature &&
    station.lat === expected.lat &&
    station.lon === expected.lon
  );
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The query parameters of a `next`/`previous` link, which must point at the list. */
function linkQuery(link: string): URLSearchParams {
  const url = new URL(link);
  check(url.pathname === '/station/', `a page link should point at /station/: ${link}`);
  return url.searchParams;
}

/** The `page` query parameter of a `next`/`previous` link, for `listStations({ query })`. */
function pageOf(link: string): string {
  return linkQuery(link).get('page') ?? '';
}

/** The `cursor` token of a `next`/`previous` link, for `listStations({ query: { cursor } })`. */
function cursorOf(link: string): string {
  const tokens = linkQuery(link).getAll('cursor');
  check(tokens.length === 1 && tokens[0] !== '', `a cursor link without one token: ${link}`);
  return tokens[0] ?? '';
}

/** `count`, which a page by number must have (only cursor pages leave it out). */
function counted(page: PaginatedStationList): number {
  check(typeof page.count === 'number', `a page by number without a count: ${page.count}`);
  return page.count;
}

async function main(): Promise<void> {
  const baseUrl = process.env.STATION_URL ?? 'http://127.0.0.1:8000';
  const username = process.env.STATION_USERNAME ?? 'admin';
  const password = process.env.STATION_PASSWORD;
  check(password !== undefined, 'set STATION_PASSWORD');

  // The document declares HTTP basic auth (and, on reading routes, a bearer token as the
  // alternative); the client encodes `user:password` itself. Answered for the basic scheme only,
  // so a bearer header never replaces it.
  const basic = (credentials: string) => (auth: { scheme?: string }) =>
    auth.scheme === 'basic' ? credentials : undefined;
  const admin = createClient(createConfig({ baseUrl, auth: basic(`${username}:${password}`) }));
  admin.interceptors.request.use((request) => {
    if (['POST', 'PUT', 'PATCH'].includes(request.method)) {
      const contentType = request.headers.get('content-type');
      check(contentType === 'application/json', `${request.method} sent ${contentType}, not JSON`);
    }
    return request;
  });
  const anonymous = createClient(createConfig({ baseUrl }));
  const impostor = createClient(
    createConfig({ baseUrl, auth: basic(`${username}:${password}-wrong`) }),
  );

  const root = success(await apiRoot({ client: admin }), 200);
  check(root.station === `${baseUrl}/station/`, `API root: ${root.station}`);
  console.log('ok  basic auth: the API root answers');

  // Create
  const created = await createStation({ client: admin, body: TEXTBOOK });
  const reading = one(success(created, 201));
  check(sameReading(reading, TEXTBOOK), `created ${JSON.stringify(reading)}`);
  check(reading.url === `${baseUrl}/station/${reading.id}/`, `url ${reading.url}`);
  check(created.response.headers.get('location') === reading.url, 'Location is not the new url');
  console.log(`ok  create: the textbook's reading is ${reading.url}`);

  // List, following `next` to the end
  const extras: Station[] = [];
  for (let n = 0; n < EXTRA_READINGS; n++) {
    const body: StationInput = {
      name: `${RUN_TAG}-${n}`,
      timestamp: FIRST_TIMESTAMP + n,
      temperature: 20 + n / 10,
      lat: -45.5,
      lon: 170.25,
    };
    extras.push(one(success(await createStation({ client: admin, body }), 201)));
  }
  const extraIds = extras.map((extra) => extra.id);
  const first = success(await listStations({ client: admin }), 200);
  check(first.previous === null, `page 1 has a previous link: ${first.previous}`);
  const count = counted(first);
  const ids: number[] = [];
  let page: PaginatedStationList = first;
  let pages = 1;
  for (;;) {
    check(counted(page) === count, 'the count changed while paging');
    check(page.results.length <= PAGE_SIZE, `a page holds ${page.results.length} readings`);
    ids.push(...page.results.map((station) => station.id));
    if (page.next === null) {
      break;
    }
    check(pages <= Math.floor(count / PAGE_SIZE) + 1, '`next` does not stop');
    const number = pageOf(page.next);
    page = success(await listStations({ client: admin, query: { page: number } }), 200);
    pages += 1;
    check(page.previous !== null, `page ${number} has no previous link`);
  }
  check(ids.length === count, `walked ${ids.length} readings, count says ${count}`);
  check(
    ids.every((id, i) => i === 0 || id > (ids[i - 1] ?? Infinity)),
    'pages are not in id order, or overlap',
  );
  check(
    [reading.id, ...extraIds].every((id) => ids.includes(id)),
    'a created reading is missing from the pages',
  );
  check(pages === Math.ceil(count / PAGE_SIZE), `${pages} pages for ${count} readings`);
  check(pages >= 3, `only ${pages} pages: pagination was not exercised`);
  const last = success(await listStations({ client: admin, query: { page: 'last' } }), 200);
  check(
    last.next === null && last.results.at(-1)?.id === ids.at(-1),
    'page=last is not the end',
  );
  console.log(`ok  list: followed \`next\` through ${pages} pages, ${count} readings`);

  // Filters and ordering, through the generated query type. This run's readings 5..12: the tag
  // (in upper case, which icontains ignores), timestamps in [first + 5, first + 15), temperatures
  // up to 21.25; newest first, three a page. The results are compared with the created readings
  // whole.
  const windowQuery = {
    name__icontains: RUN_TAG.toUpperCase(),
    timestamp__gte: FIRST_TIMESTAMP + 5,
    timestamp__lt: FIRST_TIMESTAMP + 15,
    temperature__lte: 21.25,
    ordering: '-timestamp',
    page_size: 3,
  } satisfies ListStationsData['query'];
  const expected = extras.slice(5, 13).reverse(); // readings 12 down to 5
  let windowPage = success(await listStations({ client: admin, query: windowQuery }), 200);
  check(
    counted(windowPage) === expected.length,
    `count ${windowPage.count}, not ${expected.length}`,
  );
  const windowPages = [windowPage];
  while (windowPage.next !== null) {
    check(windowPages.length < expected.length, 'filtered `next` does not stop');
    // The links keep the filters and the ordering, for clients that follow them as they are.
    const query = linkQuery(windowPage.next);
    check(
      query.get('ordering') === '-timestamp' &&
        query.get('name__icontains') === windowQuery.name__icontains,
      `a filtered \`next\` link lost its parameters: ${windowPage.next}`,
    );
    const number = pageOf(windowPage.next);
    windowPage = success(
      await listStations({ client: admin, query: { ...windowQuery, page: number } }),
      200,
    );
    windowPages.push(windowPage);
  }
  check(
    sameJson(windowPages.map((p) => p.results.length), [3, 3, 2]),
    'pages of 3 for 8 readings',
  );
  const filtered = windowPages.flatMap((p) => p.results);
  check(
    sameJson(filtered, expected),
    `filtered and ordered: ${filtered.map((s) => s.name)}, expected ${expected.map((s) => s.name)}`,
  );
  console.log(`ok  filter and order: ${filtered.length} of this run's readings, newest first`);

  // Keyset paging: `cursor=` (empty) starts the walk; `next` and `previous` carry opaque tokens,
  // passed back with the same filters and ordering (a token is bound to its ordering). Cursor
  // pages are not counted: `count` is absent, not null.
  const byCursor = async (cursor: string): Promise<PaginatedStationList> => {
    const query = {
      cursor,
      name__icontains: RUN_TAG,
      ordering: '-temperature',
      page_size: CURSOR_PAGE_SIZE,
    } satisfies ListStationsData['query'];
    return success(await listStations({ client: admin, query }), 200);
  };
  const firstCursorPage = await byCursor('');
  check(firstCursorPage.previous === null, 'the first cursor page has a previous link');
  const walk = [firstCursorPage];
  let cursorPage = firstCursorPage;
  while (cursorPage.next !== null) {
    check(walk.length <= EXTRA_READINGS, 'cursor `next` does not stop');
    cursorPage = await byCursor(cursorOf(cursorPage.next));
    check(cursorPage.previous !== null, `cursor page ${walk.length + 1} has no previous link`);
    walk.push(cursorPage);
  }
  check(
    walk.every((p) => !('count' in p)),
    `a cursor page has a count: ${walk.map((p) => p.count)}`,
  );
  const walked = walk.flatMap((p) => p.results.map((station) => station.id));
  // Warmest first: reading n has 20 + n / 10 degrees, so this is the creation order reversed.
  check(
    sameJson(walked, [...extraIds].reverse()),
    `the cursor walk visited ${walked}, not each reading once by falling temperature`,
  );
  check(
    walk.length === Math.ceil(EXTRA_READINGS / CURSOR_PAGE_SIZE),
    `${walk.length} cursor pages for ${EXTRA_READINGS} readings`,
  );
  const secondPrevious = walk[1]?.previous;
  check(typeof secondPrevious === 'string', 'the second cursor page has no previous link');
  const back = await byCursor(cursorOf(secondPrevious));
  check(
    sameJson(back.results, firstCursorPage.results) && back.previous === null,
    `\`previous\` from the second page is not the first: ${back.results.map((s) => s.id)}`,
  );
  check(firstCursorPage.next !== null, 'the first cursor page has no next link');
  const token = cursorOf(firstCursorPage.next);
  console.log(`ok  cursor: ${walk.length} pages, each reading once, and \`previous\` leads back`);

  // Retrieve
  const path = { id: reading.id };
  const fetched = success(await retrieveStation({ client: admin, path }), 200);
  check(sameJson(fetched, reading), `retrieved ${JSON.stringify(fetched)}`);
  console.log('ok  retrieve');

  // Replace
  const replacement: StationInput = { ...TEXTBOOK, timestamp: 1393926311, temperature: 29 };
  const replaced = success(await updateStation({ client: admin, path, body: replacement }), 200);
  check(sameReading(replaced, replacement), `PUT gave ${JSON.stringify(replaced)}`);
  check(replaced.id === reading.id && replaced.url === reading.url, 'PUT changed the id');
  console.log('ok  update (PUT)');

  // Change
  const changed = success(
    await partialUpdateStation({ client: admin, path, body: { temperature: 29.5 } }),
    200,
  );
  check(changed.temperature === 29.5, `PATCH gave ${JSON.stringify(changed)}`);
  check(
    sameJson(
      [changed.name, changed.timestamp, changed.lat, changed.lon],
      [replaced.name, replaced.timestamp, replaced.lat, replaced.lon],
    ),
    'PATCH changed fields it was not given',
  );
  const unchanged = success(await partialUpdateStation({ client: admin, path, body: {} }), 200);
  check(sameJson(unchanged, changed), 'an empty PATCH changed the reading');
  console.log('ok  partial update (PATCH)');

  // 400: field errors, one list of messages per failing field
  const invalid: StationInput = { ...TEXTBOOK, name: '', lat: 91 };
  const errorsOfOne = failure(await createStation({ client: admin, body: invalid }), 400);
  check(!Array.isArray(errorsOfOne), `a single create's 400 is an array`);
  const errors = errorsOfOne as ErrorDetail | ValidationErrors;
  check(isValidationErrors(errors), `expected field errors, got ${JSON.stringify(errors)}`);
  check(sameJson(errors.name, ['This field may not be blank.']), `name errors: ${errors.name}`);
  check(
    sameJson(errors.lat, ['Ensure this value is less than or equal to 90.']),
    `lat errors: ${errors.lat}`,
  );
  check(
    errors.timestamp === undefined && errors.temperature === undefined && errors.lon === undefined,
    `valid fields reported: ${JSON.stringify(errors)}`,
  );
  const patchErrors = failure(
    await partialUpdateStation({ client: admin, path, body: { lon: 181 } }),
    400,
  );
  check(isValidationErrors(patchErrors), `expected field errors, got ${JSON.stringify(patchErrors)}`);
  check(
    sameJson(patchErrors.lon, ['Ensure this value is less than or equal to 180.']),
    `lon errors: ${patchErrors.lon}`,
  );
  console.log('ok  400: field errors are ValidationErrors');

  // 400: bad list parameters are QueryParameterErrors, one list of messages per parameter. The
  // timestamp is a typed `number` that is not whole (the Python program sends the same value).
  const queryErrors = failure(
    await listStations({
      client: admin,
      query: { timestamp__gte: FIRST_TIMESTAMP + 0.5, ordering: 'colour', page_size: 0 },
    }),
    400,
  );
  check(isQueryParameterErrors(queryErrors), `400 body: ${JSON.stringify(queryErrors)}`);
  check(
    sameJson(queryErrors, {
      timestamp__gte: ['Enter a whole number.'],
      ordering: [
        'Select a valid choice. colour is not one of the available choices ' +
          '(id, timestamp, temperature, name, each optionally prefixed with -).',
      ],
      page_size: ['Ensure this value is greater than or equal to 1.'],
    }),
    `query parameter errors: ${JSON.stringify(queryErrors)}`,
  );
  // A token changed in the middle fails its signature; an intact one fails with another ordering
  // than the one it was made for.
  const middle = Math.floor(token.length / 2);
  const tampered =
    token.slice(0, middle) + (token[middle] === 'A' ? 'B' : 'A') + token.slice(middle + 1);
  for (const [cursor, ordering] of [
    [tampered, '-temperature'],
    [token, 'temperature'],
  ] as const) {
    const cursorErrors = failure(
      await listStations({
        client: admin,
        query: { cursor, name__icontains: RUN_TAG, ordering, page_size: CURSOR_PAGE_SIZE },
      }),
      400,
    );
    check(isQueryParameterErrors(cursorErrors), `400 body: ${JSON.stringify(cursorErrors)}`);
    check(
      sameJson(cursorErrors, { cursor: ['Invalid cursor.'] }),
      `cursor ${cursor}, ordering ${ordering}: ${JSON.stringify(cursorErrors)}`,
    );
  }
  console.log('ok  400: bad list parameters and cursors are QueryParameterErrors');

  // Delete, and 404 afterwards
  const deleted = await destroyStation({ client: admin, path });
  check(deleted.response.status === 204 && deleted.error === undefined, 'DELETE did not give 204');
  const gone: ErrorDetail = failure(await retrieveStation({ client: admin, path }), 404);
  check(isErrorDetail(gone), `404 body: ${JSON.stringify(gone)}`);
  check(gone.detail === 'No Station matches the given query.', `404: ${gone.detail}`);
  console.log('ok  destroy (DELETE), then 404 is an ErrorDetail');

  const pastTheEnd = failure(
    await listStations({ client: admin, query: { page: String(pages + 1) } }),
    404,
  );
  check(isErrorDetail(pastTheEnd), `404 body: ${JSON.stringify(pastTheEnd)}`);
  check(pastTheEnd.detail === 'Invalid page.', `404: ${pastTheEnd.detail}`);
  console.log('ok  404 for a page past the end is an ErrorDetail');

  // 401: without credentials, and with a wrong password
  const denied = await listStations({ client: anonymous });
  const detail = failure(denied, 401);
  check(isErrorDetail(detail), `401 body: ${JSON.stringify(detail)}`);
  check(detail.detail === 'Authentication credentials were not provided.', `401: ${detail.detail}`);
  check(
    denied.response.headers.get('www-authenticate') === 'Basic realm="station-api"',
    `challenge: ${denied.response.headers.get('www-authenticate')}`,
  );
  const wrong = failure(await listStations({ client: impostor }), 401);
  check(isErrorDetail(wrong), `401 body: ${JSON.stringify(wrong)}`);
  check(wrong.detail === 'Invalid username/password.', `401: ${wrong.detail}`);
  console.log('ok  401 is an ErrorDetail, with the Basic challenge');

  // A device token: issued by staff (basic auth), then sent as `Bearer <key>` to add readings;
  // a DELETE with it is refused.
  const issued = success(
    await createToken({
      client: admin,
      body: { label: `${RUN_TAG}-device`, scopes: ['write', 'read'] },
    }),
    201,
  );
  check(issued.key.length >= 32, 'a token key shorter than 128 bits');
  check(issued.prefix === issued.key.slice(0, 8), `prefix ${issued.prefix}`);
  const device = createClient(
    createConfig({
      baseUrl,
      auth: (auth: { scheme?: string }) => (auth.scheme === 'bearer' ? issued.key : undefined),
    }),
  );
  const deviceBody: StationInput = {
    name: `${RUN_TAG}-device`,
    timestamp: FIRST_TIMESTAMP,
    temperature: 19.5,
    lat: -45.5,
    lon: 170.25,
  };
  const made = one(success(await createStation({ client: device, body: deviceBody }), 201));
  extraIds.push(made.id);
  check(sameReading(made, deviceBody), `created with a token: ${JSON.stringify(made)}`);
  const backlog: StationInput[] = [1, 2].map((n) => ({
    ...deviceBody,
    timestamp: FIRST_TIMESTAMP + 100 + n,
  }));
  const uploaded = success(await createStation({ client: device, body: backlog }), 201);
  check(
    Array.isArray(uploaded) &&
      uploaded.length === backlog.length &&
      uploaded.every((r, i) => sameReading(r, backlog[i] as StationInput)),
    `a bulk upload with a token: ${JSON.stringify(uploaded)}`,
  );
  for (const r of uploaded as Station[]) extraIds.push(r.id);
  console.log('ok  bulk upload with a token: the readings, in order');
  // The document offers DELETE to basic auth only, so the client sends no token there by
  // itself: sent anyway, it is refused.
  const refused = failure(
    await destroyStation({
      client: device,
      path: { id: made.id },
      headers: { Authorization: `Bearer ${issued.key}` },
    }),
    403,
  );
  check(isErrorDetail(refused), `403 body: ${JSON.stringify(refused)}`);
  check(
    refused.detail === 'You do not have permission to perform this action.',
    `403: ${refused.detail}`,
  );
  const revoked = await destroyToken({ client: admin, path: { id: issued.id } });
  check(revoked.response.status === 204, `revoke: ${revoked.response.status}`);
  console.log('ok  device token: issued by staff, creates readings, refused a DELETE (403)');

  // Leave the server as we found it.
  for (const id of extraIds) {
    const outcome = await destroyStation({ client: admin, path: { id } });
    check(outcome.response.status === 204, `cleanup of ${id}`);
  }

  console.log('typescript client: all checks passed');
}

main().catch((error: unknown) => {
  if (error instanceof CheckFailed) {
    console.error(`FAILED: ${error.message}`);
  } else {
    console.error(error);
  }
  process.exit(1);
});
