// The map: a world outline bundled with the page (Natural Earth 1:110m countries from the
// world-atlas package) under circle markers drawn on one canvas, so 1,000 stations are 1,000
// draw calls rather than 1,000 DOM nodes. Map tiles only when the server's config names a
// tile URL: otherwise the page makes no request off its own origin.

import {
  canvas,
  circleMarker,
  control,
  geoJSON,
  latLngBounds,
  layerGroup,
  map as createMap,
  tileLayer,
} from 'leaflet/dist/leaflet-src.esm.js';
import 'leaflet/dist/leaflet.css';
import { feature } from 'topojson-client';
import worldUrl from 'world-atlas/countries-110m.json?url';
import { getJSON } from './api.js';
import { formatAgo, formatTemperature, temperatureColour } from './format.js';

const NATURAL_EARTH = 'Outline: <a href="https://www.naturalearthdata.com/">Natural Earth</a>';
// Antarctica's polygon runs to the pole, which Web Mercator stretches into a band along the
// bottom edge of the map; stations there still get their markers.
const ANTARCTICA = '010';
const LATE_COLOUR = '#8a8f98';

// Russia's and Fiji's rings cross the antimeridian: a step from +179° to -179° would be drawn
// as a line across the whole map. Each ring is unwrapped instead (-179° becomes 181°), so it
// is drawn as one shape just past the map's edge, where Leaflet puts its neighbours anyway.
function unwrapLongitudes(geometry) {
  const polygons = geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.coordinates;
  for (const polygon of polygons) {
    for (const ring of polygon) {
      for (let i = 1; i < ring.length; i += 1) {
        const step = ring[i][0] - ring[i - 1][0];
        if (Math.abs(step) > 180) ring[i][0] -= 360 * Math.round(step / 360);
      }
    }
  }
}

export class StationMap {
  constructor(container, { tileUrl, attribution, lateAfterSeconds, onSelect }) {
    this.lateAfterSeconds = lateAfterSeconds;
    this.onSelect = onSelect;
    this.markers = new Map(); // name -> circle marker
    this.selected = null;
    this.fitted = false;
    this.renderer = canvas({ padding: 0.5 });
    this.map = createMap(container, {
      preferCanvas: true,
      renderer: this.renderer,
      worldCopyJump: true,
      minZoom: 1,
      // Past this the 1:110m outline is too coarse to be worth zooming into.
      maxZoom: tileUrl ? 18 : 7,
      zoomSnap: 0.25,
      attributionControl: false,
    }).setView([20, 0], 1.5);
    const attributions = control.attribution({ prefix: false }).addTo(this.map);
    attributions.addAttribution(
      '<a href="https://leafletjs.com" title="A JavaScript library for interactive maps">Leaflet</a>',
    );
    if (tileUrl) {
      // The config's attribution is the operator's HTML, shown as given (e.g. a link).
      tileLayer(tileUrl, { attribution: attribution ?? '', maxZoom: 19 }).addTo(this.map);
    } else {
      attributions.addAttribution(NATURAL_EARTH);
      this.map.getContainer().classList.add('no-tiles');
      this.loadOutline();
    }
    this.stations = layerGroup().addTo(this.map);
    // The markers are pixels on a canvas; this lets the browser test (or a curious person at
    // the console) read what the map shows.
    Object.defineProperty(container, 'stationMarkers', {
      get: () =>
        [...this.markers.values()].map((m) => ({
          name: m.stationName,
          lat: m.getLatLng().lat,
          lon: m.getLatLng().lng,
          fill: m.options.fillColor,
          selected: m.stationName === this.selected,
        })),
    });
  }

  async loadOutline() {
    try {
      const topology = await getJSON(worldUrl);
      const countries = feature(topology, topology.objects.countries).features.filter((f) => f.id !== ANTARCTICA);
      for (const country of countries) unwrapLongitudes(country.geometry);
      const outline = geoJSON(
        { type: 'FeatureCollection', features: countries },
        {
          renderer: this.renderer,
          interactive: false,
          style: { color: '#9aa5b1', weight: 0.6, fillColor: '#f4f1ea', fillOpacity: 1 },
        },
      ).addTo(this.map);
      outline.bringToBack();
    } catch (error) {
      console.warn('station-api: the map outline could not be loaded', error);
    }
  }

  styleFor(reading, name) {
    const late = Date.now() / 1000 - reading.timestamp > this.lateAfterSeconds;
    const selected = name === this.selected;
    return {
      radius: selected ? 9 : 6,
      weight: selected ? 3 : 1,
      color: selected ? '#111' : '#fff',
      fillColor: late ? LATE_COLOUR : temperatureColour(reading.temperature),
      fillOpacity: 0.9,
    };
  }

  reset(readings) {
    const names = new Set();
    for (const reading of readings) {
      names.add(reading.name);
      this.update(reading.name, reading);
    }
    for (const name of [...this.markers.keys()]) if (!names.has(name)) this.update(name, null);
    if (!this.fitted && this.markers.size > 0) {
      this.fitted = true;
      this.fitAll();
    }
  }

  fitAll() {
    const bounds = latLngBounds([...this.markers.values()].map((m) => m.getLatLng()));
    this.map.fitBounds(bounds, { padding: [24, 24], maxZoom: 5 });
  }

  update(name, reading) {
    let marker = this.markers.get(name);
    if (!reading) {
      if (marker) {
        this.stations.removeLayer(marker);
        this.markers.delete(name);
      }
      return;
    }
    if (!marker) {
      marker = circleMarker([reading.lat, reading.lon], this.styleFor(reading, name));
      marker.stationName = name;
      // Built when shown, from the reading of that moment; a text node, as a station's name
      // is the API's data and must never be read as HTML.
      marker.bindTooltip(() => {
        const r = marker.reading;
        const tip = document.createElement('span');
        tip.textContent = `${r.name}: ${formatTemperature(r.temperature)}, ${formatAgo(r.timestamp)}`;
        return tip;
      });
      marker.on('click', () => this.onSelect(name));
      this.markers.set(name, marker);
      this.stations.addLayer(marker);
    } else {
      const old = marker.reading;
      if (old.lat !== reading.lat || old.lon !== reading.lon) marker.setLatLng([reading.lat, reading.lon]);
    }
    marker.reading = reading;
    marker.setStyle(this.styleFor(reading, name));
  }

  // Lateness changes with time alone.
  tick() {
    for (const [name, marker] of this.markers) {
      const style = this.styleFor(marker.reading, name);
      if (style.fillColor !== marker.options.fillColor) marker.setStyle(style);
    }
  }

  select(name, { reveal = false } = {}) {
    const previous = this.selected;
    this.selected = name;
    for (const n of [previous, name]) {
      const marker = this.markers.get(n);
      if (marker) marker.setStyle(this.styleFor(marker.reading, n));
    }
    const marker = this.markers.get(name);
    if (marker) {
      marker.bringToFront();
      if (reveal && !this.map.getBounds().contains(marker.getLatLng())) this.map.panTo(marker.getLatLng());
    }
  }
}
