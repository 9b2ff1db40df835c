// Text shown for numbers and times. One place, so the list, map, chart and table agree.

const numberFormat = new Intl.NumberFormat(undefined, {
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});
const coordinateFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export const nowSeconds = () => Date.now() / 1000;

export const formatTemperature = (celsius) => `${numberFormat.format(celsius)} °C`;

export const formatNumber = (value) => (value == null ? '' : numberFormat.format(value));

export function formatPosition(lat, lon) {
  const ns = lat >= 0 ? 'N' : 'S';
  const ew = lon >= 0 ? 'E' : 'W';
  return `${coordinateFormat.format(Math.abs(lat))}° ${ns}, ${coordinateFormat.format(Math.abs(lon))}° ${ew}`;
}

export const formatDateTime = (unixSeconds) => dateTimeFormat.format(unixSeconds * 1000);

// "how long ago", coarse on purpose: it is redrawn every second for every station, and a
// coarse text changes rarely, so most redraws touch nothing.
export function formatAgo(unixSeconds, now = nowSeconds()) {
  const seconds = Math.round(now - unixSeconds);
  if (seconds < -5) return 'in the future';
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  if (days < 365) return `${days} days ago`;
  return formatDateTime(unixSeconds);
}

// Blue for cold, red for hot: a hue from 240° at -20 °C to 0° at 40 °C.
export function temperatureColour(celsius) {
  const t = Math.min(40, Math.max(-20, celsius));
  const hue = Math.round(240 - ((t + 20) / 60) * 240);
  return `hsl(${hue} 75% 45%)`;
}
