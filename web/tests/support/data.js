// Readings for the tests and the README screenshot: believable, and the same on every run
// for the same clock.

export const CITIES = [
  { name: 'Oslo', lat: 59.91, lon: 10.75, mean: 4, swing: 4 },
  { name: 'Chandigarh', lat: 30.733315, lon: 76.779418, mean: 27, swing: 6 },
  { name: 'Nairobi', lat: -1.29, lon: 36.82, mean: 19, swing: 6 },
  { name: 'Reykjavik', lat: 64.15, lon: -21.94, mean: 1, swing: 2 },
  { name: 'Lima', lat: -12.05, lon: -77.04, mean: 19, swing: 3 },
  { name: 'Montreal', lat: 45.5, lon: -73.57, mean: -6, swing: 5 },
  { name: 'Perth', lat: -31.95, lon: 115.86, mean: 28, swing: 8 },
  { name: 'Tokyo', lat: 35.68, lon: 139.69, mean: 9, swing: 5 },
  { name: 'Cairo', lat: 30.04, lon: 31.24, mean: 20, swing: 7 },
  { name: 'Anchorage', lat: 61.22, lon: -149.9, mean: -9, swing: 3 },
  { name: 'Santiago', lat: -33.45, lon: -70.67, mean: 22, swing: 8 },
  { name: 'Singapore', lat: 1.35, lon: 103.82, mean: 28, swing: 3 },
];

// A small deterministic generator (mulberry32), so "noise" is the same every run.
export function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const round1 = (x) => Math.round(x * 10) / 10;

// A daily swing around the city's mean, warmest mid-afternoon local time, plus noise.
export function temperatureAt(city, timestamp, noise) {
  const localHours = (timestamp / 3600 + city.lon / 15) % 24;
  return round1(city.mean + city.swing * Math.sin(((localHours - 9) / 24) * 2 * Math.PI) + (noise() - 0.5) * 0.8);
}

// One city's readings every `step` seconds over `seconds`, the last at `end`.
export function series(city, { end, seconds, step, seed = 1 }) {
  const noise = random(seed);
  const readings = [];
  for (let t = end - seconds; t <= end; t += step) {
    readings.push({ name: city.name, timestamp: t, temperature: temperatureAt(city, t, noise), lat: city.lat, lon: city.lon });
  }
  return readings;
}

// `count` stations spread over the land-ish latitudes, one reading each.
export function manyStations(count, now) {
  const noise = random(7);
  const stations = [];
  for (let i = 0; i < count; i += 1) {
    const lat = round1(-50 + noise() * 115);
    const lon = round1(-170 + noise() * 340);
    stations.push({
      name: `Station ${String(i + 1).padStart(4, '0')}`,
      timestamp: now - Math.floor(noise() * 8),
      temperature: round1(30 - Math.abs(lat) * 0.6 + (noise() - 0.5) * 6),
      lat,
      lon,
    });
  }
  return stations;
}

// The README's picture and the screenshots: a dozen cities, a day of readings a minute
// apart, one of them late (its last reading `lateBy` seconds ago).
export function showcase(now, { hours = 24, step = 60, late = 'Lima', lateBy = 600 } = {}) {
  return CITIES.flatMap((city, i) =>
    series(city, { end: city.name === late ? now - lateBy : now, seconds: hours * 3600, step, seed: i + 1 }),
  );
}
