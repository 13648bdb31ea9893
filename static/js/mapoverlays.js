// What people add on top of the communes: the room's annotations (markers,
// lines, zones drawn by members, on the signaling socket) and the operator
// layers (GeoJSON uploaded through the API, listed live, drawn on demand).
// Every label and property is shown as text, never as HTML.

import { byId, find } from './ui.js';
import { apiFetch } from './api.js';

/**
 * @typedef {typeof import('leaflet')} Leaflet
 * @typedef {import('leaflet').Map} LMap
 * @typedef {import('leaflet').Layer} LLayer
 * @typedef {import('./i18n.js').I18n} I18n
 * @typedef {import('./protocol.js').Envelope} Envelope
 * @typedef {'marker'|'line'|'polygon'} AnnKind
 * @typedef {{id: string, kind: AnnKind, coords: [number, number][], label: string, color: string,
 *   author_name?: string, editor_name?: string, updated_at?: string, version: number}} Annotation
 * @typedef {{id: string, name: string, features: number, author?: string, created?: string}} LayerInfo
 */

/** Fewest points per kind (the server's rule, docs/protocol.md). */
const MIN_POINTS = { marker: 1, line: 2, polygon: 3 };
const LAYER_COLOURS = ['#00b3ff', '#ff6ec7', '#ffd166', '#06d6a0', '#f78c6b'];

/** @param {number} n */
const round6 = (n) => Math.round(n * 1e6) / 1e6;

export class Annotations {
  /**
   * @param {{i18n: I18n, send: (type: string, data: any) => string|null}} opts
   */
  constructor(opts) {
    this.i18n = opts.i18n;
    this.send = opts.send;
    /** @type {Map<string, Annotation>} */
    this.items = new Map();
    /** @type {Map<string, LLayer>} */
    this.drawn = new Map();
    /** @type {Leaflet|null} */
    this.L = null;
    /** @type {LMap|null} */
    this.map = null;
    this.drawing = false;
    /** @type {[number, number][]} */
    this.points = [];
    /** @type {LLayer|null} */
    this.sketch = null;
    /** @type {Map<string, string>} request id → op, to match echoes and errors */
    this.pending = new Map();
    this.shown = ''; // annotation in the info box
    this.wire();
  }

  /**
   * @param {Leaflet} L
   * @param {LMap} map
   */
  attach(L, map) {
    this.L = L;
    this.map = map;
    map.createPane('annotations');
    map.on('click', (e) => { if (this.drawing) this.addPoint([round6(e.latlng.lat), round6(e.latlng.lng)]); });
    this.redraw();
  }

  /**
   * @param {Envelope} env
   * @returns {boolean}
   */
  handle(env) {
    const d = env.data ?? {};
    switch (env.type) {
      case 'annotations':
        this.items = new Map((d.items ?? []).map((/** @type {Annotation} */ a) => [a.id, a]));
        this.redraw();
        return true;
      case 'annotation': {
        /** @type {Annotation} */
        const a = d.annotation;
        if (env.id && this.pending.delete(env.id) && d.op === 'create') this.stopDrawing();
        const old = this.items.get(a.id);
        if (old && old.version >= a.version) return true;
        if (d.op === 'delete') this.items.delete(a.id);
        else this.items.set(a.id, a);
        this.redraw();
        return true;
      }
      case 'error':
        if (d.ref && this.pending.delete(d.ref)) {
          this.say(this.i18n.has(`ann.err.${d.code}`) ? `ann.err.${d.code}` : 'ann.err.other');
          return true;
        }
        return false;
    }
    return false;
  }

  /** @private */
  wire() {
    byId('ann-start').addEventListener('click', () => (this.drawing ? this.stopDrawing() : this.startDrawing()));
    byId('ann-cancel').addEventListener('click', () => this.stopDrawing());
    find(document, '#ann-kind', HTMLSelectElement).addEventListener('change', () => { this.points = []; this.drawSketch(); });
    byId('ann-bar').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.save();
    });
    byId('ann-info-close').addEventListener('click', () => this.showInfo(''));
    byId('ann-delete').addEventListener('click', () => {
      const id = this.shown;
      if (!id) return;
      const req = this.send('annotate', { op: 'delete', annotation: { id } });
      if (req) this.pending.set(req, 'delete');
      this.showInfo('');
    });
  }

  /** @private */
  startDrawing() {
    this.drawing = true;
    this.points = [];
    byId('ann-bar').hidden = false;
    byId('ann-start').setAttribute('aria-pressed', 'true');
    byId('map').classList.add('drawing');
    this.say('');
    this.drawSketch();
  }

  /** @private */
  stopDrawing() {
    this.drawing = false;
    this.points = [];
    this.drawSketch();
    byId('ann-bar').hidden = true;
    byId('ann-start').setAttribute('aria-pressed', 'false');
    byId('map').classList.remove('drawing');
    find(document, '#ann-label', HTMLInputElement).value = '';
  }

  /** @private @returns {AnnKind} */
  kind() {
    return /** @type {AnnKind} */ (find(document, '#ann-kind', HTMLSelectElement).value);
  }

  /**
   * @private
   * @param {[number, number]} p
   */
  addPoint(p) {
    if (this.kind() === 'marker') this.points = [p];
    else this.points.push(p);
    this.drawSketch();
  }

  /** @private */
  drawSketch() {
    this.sketch?.remove();
    this.sketch = null;
    const n = this.points.length;
    byId('ann-hint').textContent = this.drawing ? this.i18n.t('ann.hint', { n, min: MIN_POINTS[this.kind()] }) : '';
    if (!this.L || !this.map || n === 0) return;
    const colour = find(document, '#ann-color', HTMLSelectElement).value;
    const opts = { color: colour, weight: 3, dashArray: '6 4', pane: 'annotations', interactive: false };
    this.sketch = n === 1 || this.kind() === 'marker'
      ? this.L.circleMarker(this.points[n - 1], { ...opts, radius: 7 })
      : this.kind() === 'polygon' ? this.L.polygon(this.points, opts) : this.L.polyline(this.points, opts);
    this.sketch.addTo(this.map);
  }

  /** @private */
  save() {
    const label = find(document, '#ann-label', HTMLInputElement).value.trim();
    const kind = this.kind();
    if (this.points.length < MIN_POINTS[kind]) {
      this.say('ann.needPoints');
      return;
    }
    if (!label) {
      this.say('ann.needLabel');
      return;
    }
    const color = find(document, '#ann-color', HTMLSelectElement).value;
    const req = this.send('annotate', { op: 'create', annotation: { kind, coords: this.points, label, color } });
    if (!req) {
      this.say('ann.err.offline');
      return;
    }
    this.pending.set(req, 'create');
    this.say('ann.saving');
  }

  /**
   * @private
   * @param {string} key  '' clears
   */
  say(key) {
    byId('ann-msg').textContent = key ? this.i18n.t(key) : '';
  }

  /** Draws every annotation again (they are few: at most 1,000 a room). @private */
  redraw() {
    for (const l of this.drawn.values()) l.remove();
    this.drawn.clear();
    if (!this.L || !this.map) return;
    const L = this.L;
    for (const a of this.items.values()) {
      const opts = { color: a.color, pane: 'annotations' };
      /** @type {import('leaflet').Path} */
      const layer = a.kind === 'marker'
        ? L.circleMarker(a.coords[0], { ...opts, radius: 8, color: '#ffffff', weight: 2, fillColor: a.color, fillOpacity: 1 })
        : a.kind === 'polygon' ? L.polygon(a.coords, { ...opts, weight: 2, fillOpacity: 0.25 }) : L.polyline(a.coords, { ...opts, weight: 4 });
      const tip = document.createElement('span');
      tip.textContent = a.label;
      layer.bindTooltip(tip, { permanent: true, direction: 'top', className: 'ann-tip', offset: [0, -8] });
      layer.on('click', () => this.showInfo(a.id));
      // The path exists once the map has a view (not yet on a hidden tab).
      layer.once('add', () => layer.getElement()?.setAttribute('data-ann', a.id));
      layer.addTo(this.map);
      this.drawn.set(a.id, layer);
    }
    const list = byId('map-pane');
    list.dataset.annotations = String(this.items.size);
    if (this.shown && !this.items.has(this.shown)) this.showInfo('');
  }

  /**
   * @private
   * @param {string} id  '' hides the box
   */
  showInfo(id) {
    this.shown = id;
    const box = byId('ann-info');
    const a = this.items.get(id);
    box.hidden = !a;
    if (!a) return;
    byId('ann-info-label').textContent = a.label;
    const when = a.updated_at ? new Date(a.updated_at).toLocaleString(this.i18n.lang, { dateStyle: 'short', timeStyle: 'short' }) : '';
    byId('ann-info-meta').textContent = this.i18n.t('ann.meta', { name: a.editor_name || a.author_name || '?', when });
  }
}

export class Layers {
  /**
   * @param {{i18n: I18n, auth: import('./api.js').Auth, isHost: () => boolean}} opts
   */
  constructor(opts) {
    this.i18n = opts.i18n;
    this.auth = opts.auth;
    this.isHost = opts.isHost;
    /** @type {LayerInfo[]} */
    this.items = [];
    /** @type {Map<string, LLayer>} layers turned on */
    this.on = new Map();
    /** @type {Leaflet|null} */
    this.L = null;
    /** @type {LMap|null} */
    this.map = null;
    byId('layers-toggle').addEventListener('click', () => this.toggleBox());
    byId('layer-upload').addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.upload();
    });
  }

  /**
   * @param {Leaflet} L
   * @param {LMap} map
   */
  attach(L, map) {
    this.L = L;
    this.map = map;
    map.createPane('oplayers');
    void this.load();
  }

  /**
   * @param {Envelope} env
   * @returns {boolean}
   */
  handle(env) {
    if (env.type !== 'layers') return false;
    this.setList(env.data?.items ?? []);
    return true;
  }

  /** Reads the list (the `layers` messages keep it current afterwards). */
  async load() {
    try {
      const res = await this.api('GET', '/api/v1/layers');
      if (res.ok) this.setList((await res.json()).items ?? []);
    } catch (err) {
      console.warn('layers', err);
    }
  }

  /** @private */
  toggleBox() {
    const box = byId('layers-box');
    box.hidden = !box.hidden;
    byId('layers-toggle').setAttribute('aria-expanded', String(!box.hidden));
    byId('layer-upload').hidden = !this.isHost();
  }

  /**
   * @private
   * @param {LayerInfo[]} items
   */
  setList(items) {
    this.items = items;
    const ids = new Set(items.map((l) => l.id));
    for (const [id, l] of this.on) {
      if (!ids.has(id)) {
        l.remove();
        this.on.delete(id);
      }
    }
    const list = byId('layers-list');
    list.replaceChildren(...items.map((l, i) => this.item(l, i)));
    byId('layers-empty').hidden = items.length > 0;
    byId('layers-toggle').dataset.count = String(items.length);
  }

  /**
   * @private
   * @param {LayerInfo} l
   * @param {number} i
   */
  item(l, i) {
    const li = document.createElement('li');
    li.dataset.layer = l.id;
    const label = document.createElement('label');
    const cb = document.createElement('input');
    cb.type = 'checkbox';
    cb.checked = this.on.has(l.id);
    cb.addEventListener('change', () => void this.show(l.id, cb.checked, i));
    const name = document.createElement('span');
    name.textContent = `${l.name} (${l.features})`;
    label.append(cb, name);
    li.append(label);
    if (this.isHost()) {
      const del = document.createElement('button');
      del.type = 'button';
      del.className = 'link';
      del.textContent = this.i18n.t('layers.delete');
      del.addEventListener('click', () => void this.remove(l.id));
      li.append(del);
    }
    return li;
  }

  /**
   * @private
   * @param {string} id
   * @param {boolean} on
   * @param {number} i  position, for the colour
   */
  async show(id, on, i) {
    this.on.get(id)?.remove();
    this.on.delete(id);
    if (!on || !this.L || !this.map) return;
    const L = this.L;
    try {
      const res = await this.api('GET', `/api/v1/layers/${encodeURIComponent(id)}`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const colour = LAYER_COLOURS[i % LAYER_COLOURS.length];
      const layer = L.geoJSON(await res.json(), {
        pane: 'oplayers',
        style: () => ({ color: colour, weight: 2, fillOpacity: 0.15 }),
        pointToLayer: (_f, ll) => L.circleMarker(ll, { pane: 'oplayers', radius: 6, color: '#0e1217', weight: 1, fillColor: colour, fillOpacity: 0.95 }),
        onEachFeature: (f, l) => { l.bindTooltip(() => propsElement(f.properties), { sticky: true }); },
      });
      if (!byId('layers-list').querySelector(`[data-layer="${CSS.escape(id)}"] input:checked`)) return; // turned off meanwhile
      layer.addTo(this.map);
      this.on.set(id, layer);
      byId('map-pane').dataset.layersOn = [...this.on.keys()].join(' ');
    } catch (err) {
      console.warn('layer', id, err);
      byId('layers-msg').textContent = this.i18n.t('layers.loadFailed');
    }
  }

  /** @private */
  async upload() {
    const file = find(document, '#layer-file', HTMLInputElement).files?.[0];
    const nameInput = find(document, '#layer-name', HTMLInputElement);
    const name = nameInput.value.trim() || (file?.name ?? '').replace(/\.(geo)?json$/i, '');
    const msg = byId('layers-msg');
    if (!file || !name) {
      msg.textContent = this.i18n.t('layers.needFile');
      return;
    }
    msg.textContent = this.i18n.t('layers.uploading');
    try {
      const res = await this.api('POST', `/api/v1/layers?name=${encodeURIComponent(name)}`, file);
      if (res.ok) {
        msg.textContent = this.i18n.t('layers.uploaded', { name });
        nameInput.value = '';
        find(document, '#layer-file', HTMLInputElement).value = '';
        return;
      }
      const body = await res.json().catch(() => ({}));
      // The server's message names the faulty feature; it is shown as text.
      msg.textContent = this.i18n.t('layers.refused', { why: String(body.message ?? res.status) });
    } catch {
      msg.textContent = this.i18n.t('layers.refused', { why: '—' });
    }
  }

  /**
   * @private
   * @param {string} id
   */
  async remove(id) {
    const res = await this.api('DELETE', `/api/v1/layers/${encodeURIComponent(id)}`).catch(() => null);
    if (!res || !res.ok) byId('layers-msg').textContent = this.i18n.t('layers.deleteFailed');
  }

  /**
   * @private
   * @param {string} method
   * @param {string} path
   * @param {Blob} [body]
   */
  api(method, path, body) {
    /** @type {Record<string, string>} */
    /** @type {Record<string, string>} */
    const headers = {};
    if (body) headers['Content-Type'] = 'application/geo+json';
    return apiFetch(this.auth, path, { method, headers, body });
  }
}

/**
 * A feature's properties as text lines (uploaded data: never HTML).
 * @param {Record<string, unknown>|null} props
 */
function propsElement(props) {
  const el = document.createElement('div');
  for (const [k, v] of Object.entries(props ?? {}).slice(0, 12)) {
    const line = document.createElement('div');
    const text = typeof v === 'object' ? JSON.stringify(v) : String(v);
    line.textContent = `${k} : ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`;
    el.append(line);
  }
  if (!el.childElementCount) el.textContent = '—';
  return el;
}
