// The merge rules of src/store.js (no browser needed): the latest list and the stream's
// events, in any order, end where the server is.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatestStore } from '../src/store.js';

const r = (id, name, timestamp, temperature = 20) => ({ id, name, timestamp, temperature, lat: 0, lon: 0 });
const tick = () => new Promise((done) => setImmediate(done));

// A store whose re-reads the test answers by hand, in any order.
function storeWithServer() {
  const pending = [];
  const store = new LatestStore((name) => new Promise((answer) => pending.push({ name, answer })));
  const events = [];
  store.subscribe((event) => events.push(event));
  return { store, pending, events };
}

test('a newer reading replaces, an older one or a replay does not', () => {
  const { store, events } = storeWithServer();
  store.reset([r(1, 'Oslo', 100), r(2, 'Oslo', 90), r(3, 'Lima', 100)]);
  assert.equal(store.get('Oslo').id, 1);
  assert.equal(store.offer(r(4, 'Oslo', 99), true), false);
  assert.equal(store.offer(r(1, 'Oslo', 100), true), false, 'the same reading again');
  assert.equal(store.offer(r(5, 'Oslo', 100), true), true, 'same timestamp, greater id');
  store.apply('created', r(6, 'Bergen', 50));
  assert.deepEqual([...store.values()].map((x) => x.id).sort(), [3, 5, 6]);
  assert.deepEqual(events.map((e) => e.type), ['reset', 'change', 'change']);
});

test('deleting the latest reading re-reads the station; no readings left removes it', async () => {
  const { store, pending } = storeWithServer();
  store.reset([r(1, 'Oslo', 100), r(3, 'Lima', 100)]);
  store.apply('deleted', { id: 2 }); // not anyone's latest: nothing to do
  assert.equal(pending.length, 0);
  store.apply('deleted', { id: 1 });
  assert.deepEqual(pending.map((p) => p.name), ['Oslo']);
  pending.shift().answer(r(7, 'Oslo', 80));
  await tick();
  assert.equal(store.get('Oslo').id, 7, 'an older reading replaces the deleted one');
  store.apply('deleted', { id: 3 });
  pending.shift().answer(null);
  await tick();
  assert.equal(store.get('Lima'), undefined);
});

test('a reading created while a re-read is out wins if newer', async () => {
  const { store, pending } = storeWithServer();
  store.reset([r(1, 'Oslo', 100)]);
  store.apply('deleted', { id: 1 });
  store.apply('created', r(9, 'Oslo', 200));
  pending.shift().answer(r(9, 'Oslo', 200));
  await tick();
  assert.equal(store.get('Oslo').id, 9);
});

test('an update in place keeps the station; one that moves or ages the reading re-reads it', async () => {
  const { store, pending } = storeWithServer();
  store.reset([r(1, 'Oslo', 100), r(2, 'Lima', 100)]);
  store.apply('updated', r(1, 'Oslo', 100, 5));
  assert.equal(store.get('Oslo').temperature, 5);
  assert.equal(pending.length, 0);
  store.apply('updated', r(1, 'Bergen', 100));
  assert.equal(store.get('Bergen').id, 1);
  assert.deepEqual(pending.map((p) => p.name), ['Oslo']);
  pending.shift().answer(r(0, 'Oslo', 10));
  await tick();
  assert.equal(store.get('Oslo').id, 0);
  store.apply('updated', r(2, 'Lima', 50));
  assert.deepEqual(pending.map((p) => p.name), ['Lima']);
  pending.shift().answer(r(2, 'Lima', 50));
  await tick();
  assert.equal(store.get('Lima').timestamp, 50);
});

test('a re-read answer that a later change may have outdated is read again', async () => {
  const { store, pending } = storeWithServer();
  store.reset([r(1, 'Oslo', 100)]);
  store.apply('deleted', { id: 1 });
  // The server answered with reading 5 but deleted it before the answer arrived.
  store.apply('deleted', { id: 5 });
  pending.shift().answer(r(5, 'Oslo', 90));
  await tick();
  assert.deepEqual(pending.map((p) => p.name), ['Oslo'], 'read again');
  pending.shift().answer(r(4, 'Oslo', 80));
  await tick();
  assert.equal(store.get('Oslo').id, 4);
});
