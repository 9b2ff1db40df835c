// The newest reading of each station, kept from the latest list and the event stream.
//
// Both sources are merged by one rule, the server's: a station's latest reading is its
// greatest `timestamp`, then greatest `id`. So a list read and a stream that overlap agree,
// whatever order they arrive in.
//
// A delete (or an update that moves a reading away) of a station's current latest reading
// cannot be resolved locally: the stream does not say which reading comes next. That station
// is marked stale and re-read from /station/latest/?name=, and the answer replaces it.

const isNewer = (a, b) => a.timestamp > b.timestamp || (a.timestamp === b.timestamp && a.id > b.id);

export class LatestStore {
  constructor(readOne) {
    // readOne(name) -> Promise<reading | null>: the server's latest reading of one station.
    this.readOne = readOne;
    this.byName = new Map();
    // Id of each station's current latest reading, to recognise it in a `deleted` event,
    // which carries only the id.
    this.nameById = new Map();
    // Stations whose shown reading is known to be gone, waiting for a re-read.
    this.stale = new Set();
    // Re-reads in flight: name -> a token, so only the newest answer counts.
    this.rereads = new Map();
    // Ids updated or deleted while re-reads were in flight: an answer naming one of them may
    // predate that change, so that station is read again.
    this.touched = new Set();
    this.listeners = new Set();
  }

  // listener({type: 'reset'}) after a whole new list, or
  // listener({type: 'change', name, reading (null: gone), live}) for one station.
  subscribe(listener) {
    this.listeners.add(listener);
  }

  emit(event) {
    for (const listener of this.listeners) listener(event);
  }

  get size() {
    return this.byName.size;
  }

  get(name) {
    return this.byName.get(name);
  }

  values() {
    return this.byName.values();
  }

  // Replace everything with a fresh list (the first load, or after the stream said `reset`).
  reset(readings) {
    this.byName.clear();
    this.nameById.clear();
    this.stale.clear();
    for (const reading of readings) {
      const current = this.byName.get(reading.name);
      if (!current || isNewer(reading, current)) this.put(reading);
    }
    this.emit({ type: 'reset' });
  }

  put(reading) {
    const previous = this.byName.get(reading.name);
    if (previous) this.nameById.delete(previous.id);
    this.byName.set(reading.name, reading);
    this.nameById.set(reading.id, reading.name);
    this.stale.delete(reading.name);
  }

  remove(name) {
    const previous = this.byName.get(name);
    if (!previous) return;
    this.nameById.delete(previous.id);
    this.byName.delete(name);
    this.stale.delete(name);
    this.emit({ type: 'change', name, reading: null, live: true });
  }

  // A reading that may be its station's newest. Returns whether it became so.
  offer(reading, live) {
    const current = this.byName.get(reading.name);
    if (current && !this.stale.has(reading.name) && !isNewer(reading, current)) return false;
    this.put(reading);
    this.emit({ type: 'change', name: reading.name, reading, live });
    return true;
  }

  // One event from the stream.
  apply(type, data) {
    if (this.rereads.size > 0 && (type === 'updated' || type === 'deleted')) this.touched.add(data.id);
    if (type === 'created') {
      this.offer(data, true);
    } else if (type === 'updated') {
      const owner = this.nameById.get(data.id);
      if (owner === undefined) {
        this.offer(data, true);
      } else if (owner === data.name && data.timestamp >= this.byName.get(owner).timestamp) {
        // The shown reading changed in place and is still the newest.
        this.put(data);
        this.emit({ type: 'change', name: data.name, reading: data, live: true });
      } else {
        // It moved to another station or back in time: which reading is now the newest of
        // its old station is the server's to say.
        this.invalidate(owner);
        if (owner !== data.name) this.offer(data, true);
      }
    } else if (type === 'deleted') {
      const owner = this.nameById.get(data.id);
      if (owner !== undefined) this.invalidate(owner);
    }
  }

  invalidate(name) {
    this.stale.add(name);
    this.reread(name);
  }

  async reread(name) {
    const token = {};
    this.rereads.set(name, token);
    let reading;
    try {
      reading = await this.readOne(name);
    } catch (error) {
      console.warn(`station-api: could not re-read the latest reading of ${name}`, error);
      if (this.rereads.get(name) === token) this.rereads.delete(name);
      // Try again later; until then the station shows what it had.
      setTimeout(() => this.stale.has(name) && !this.rereads.has(name) && this.reread(name), 5000);
      return;
    }
    if (this.rereads.get(name) !== token) return; // a newer re-read of this station is on its way
    this.rereads.delete(name);
    const outdated = reading && this.touched.has(reading.id);
    if (this.rereads.size === 0) this.touched.clear();
    if (outdated) {
      this.reread(name);
    } else if (reading) {
      this.offer(reading, true);
    } else if (this.stale.has(name)) {
      this.remove(name);
    }
  }
}
