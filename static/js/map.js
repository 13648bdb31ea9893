// The live map of the room: the territory's communes coloured from the
// live feed (on the signaling socket, topic "map"), the département totals,
// a legend, the commune panel, and presenter follow.
//
// Leaflet is loaded as a classic script (/vendor/leaflet/leaflet.js, copied
// from node_modules by `npm run build`) and typed from @types/leaflet.

import { MapFeed, countOf, per100k, rampScale, levelColour, throttle, todayIn, LEVEL_COLOURS, RAMP, ZERO_COLOUR } from './mapdata.js';
import { CommunePanel, fmtRate } from './mappanel.js';
import { Annotations, Layers } from './mapoverlays.js';
import { byId, find } from './ui.js';
import { isHostRole } from './protocol.js';

/**
 * @typedef {typeof import('leaflet')} Leaflet
 * @typedef {import('leaflet').Map} LMap
 * @typedef {import('leaflet').Path} LPath
 * @typedef {import('./mapdata.js').MapState} MapState
 * @typedef {import('./mapdata.js').Period} Period
 * @typedef {import('./mapdata.js').PlaceFilter} PlaceFilter
 * @typedef {import('./mapdata.js').ColourMode} ColourMode
 * @typedef {import('./mapdata.js').FeedStatus} FeedStatus
 * @typedef {import('./protocol.js').Envelope} Envelope
 * @typedef {import('./protocol.js').Joined} Joined
 * @typedef {import('./protocol.js').MapView} MapView
 * @typedef {import('./i18n.js').I18n} I18n
 * @typedef {{code: string, nom: string, population: number}} CommuneProps
 * @typedef {{tiles: string, attribution: string, timezone: string, territory: boolean}} MapConfig
 */

/** Presenter updates: at most 10 a second, the latest wins. */
const VIEW_INTERVAL_MS = 100;
const BORDER = '#0e1217';

/** @param {number} n */
const round6 = (n) => Math.round(n * 1e6) / 1e6;

export class LiveMap {
  /**
   * @param {{i18n: I18n, auth: import('./api.js').Auth,
   *   send: (type: string, data: any) => string|null,
   *   selfId: () => string,
   *   nameOf: (id: string) => string}} opts
   */
  constructor(opts) {
    this.i18n = opts.i18n;
    this.send = opts.send;
    this.selfId = opts.selfId;
    this.nameOf = opts.nameOf;
    this.pane = byId('map-pane');
    this.mapEl = byId('map');
    /** @type {MapConfig} */
    this.cfg = { tiles: '', attribution: '', timezone: 'Europe/Paris', territory: false };
    /** @type {LMap|null} */
    this.map = null;
    /** @type {Map<string, LPath>} */
    this.layers = new Map();
    /** @type {Map<string, CommuneProps>} */
    this.communes = new Map();
    this.depPopulation = 0;
    /** @type {ColourMode} */
    this.mode = 'level';
    /** @type {Period} */
    this.period = 'last7';
    /** @type {PlaceFilter} */
    this.place = 'all';
    this.selected = '';
    this.positioned = false; // the map has a viewport (fitted, or a presenter's)
    /** @type {import('leaflet').LatLngBounds|null} */
    this.bounds = null;
    this.role = '';
    this.presenter = '';
    this.following = true;
    /** @type {MapView|null} the presenter's latest view, kept while detached */
    this.lastView = null;
    this.viewsSeen = 0;
    this.feed = new MapFeed({
      send: (t, d) => this.send(t, d),
      onChange: () => this.render(),
      onStatus: (s) => this.feedStatus(s),
      log: (m) => console.info(m),
    });
    this.panel = new CommunePanel({
      i18n: this.i18n,
      auth: opts.auth,
      timezoneToday: () => todayIn(this.cfg.timezone),
      onClose: () => this.select('', 'local'),
    });
    this.ann = new Annotations({ i18n: this.i18n, send: (t, d) => this.send(t, d) });
    this.overlays = new Layers({ i18n: this.i18n, auth: opts.auth, isHost: () => isHostRole(this.role) });
    this.sendView = throttle(() => {
      const v = this.view();
      if (v && this.isPresenter()) this.send('map-view', v);
    }, VIEW_INTERVAL_MS);
    this.i18n.onChange(() => this.relabel());
  }

  /**
   * Reads the server's map settings and, if it has a territory, draws it.
   * @returns {Promise<boolean>} whether the room has a map
   */
  async start() {
    this.feedStatus(this.feed.status);
    try {
      const res = await fetch('/config.json', { cache: 'no-cache' });
      if (res.ok) this.cfg = { ...this.cfg, ...((await res.json()).map ?? {}) };
    } catch (err) {
      console.warn('config', err);
    }
    if (!this.cfg.territory) {
      this.feed.unavailable();
      return false;
    }
    this.wireTools();
    this.renderPresenter();
    try {
      const res = await fetch('/territory.geojson');
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      this.build(await res.json());
    } catch (err) {
      console.error('territory', err);
      this.message('map.loadFailed');
    }
    return true;
  }

  /**
   * Our socket joined (fresh or resumed): watch the map on it, and catch
   * up with the presenter.
   * @param {Joined} j
   */
  joined(j) {
    this.role = j.role ?? '';
    this.setPresenter(j.presenter ?? '');
    if (j.view && this.presenter && !this.isPresenter()) {
      this.lastView = j.view;
      if (this.following) this.applyView(j.view);
    }
    // A view sent while the socket was down was lost: send the current one.
    if (this.isPresenter()) this.sendView();
    if (this.feed.status !== 'off') this.feed.subscribe();
    // Layers changed while the socket was down would be missed: read the list again.
    if (this.map && j.resumed) void this.overlays.load();
    this.renderPresenter();
  }

  /** @param {import('./signal.js').SignalStatus} s */
  connection(s) {
    if (s === 'reconnecting' || s === 'closed') this.feed.connectionLost();
  }

  /**
   * @param {Envelope} env
   * @returns {boolean} whether the message was the map's
   */
  handle(env) {
    if (this.ann.handle(env) || this.overlays.handle(env)) return true;
    const d = env.data ?? {};
    switch (env.type) {
      case 'map-snapshot':
        this.feed.snapshot(d);
        return true;
      case 'map-delta':
        this.feed.delta(d);
        return true;
      case 'presenter':
        this.setPresenter(d.id ?? '');
        this.renderPresenter();
        return true;
      case 'map-view':
        if (d.from && d.from === this.presenter && !this.isPresenter()) {
          this.pane.dataset.views = String(++this.viewsSeen);
          this.lastView = d;
          if (this.following) this.applyView(d);
        }
        return true;
      case 'error':
        if (d.ref && d.ref === this.feed.subscribeId && (d.code === 'unavailable' || d.code === 'unknown_topic')) {
          this.feed.unavailable();
          return true;
        }
        return false;
    }
    return false;
  }

  /** The map became visible or changed size. */
  resized() {
    if (!this.map) return;
    this.map.invalidateSize(); // keeps the centre: a banner or a panel must not move the view
    // ...up to half a pixel of rounding: a follower goes back to the exact view.
    if (this.positioned && this.lastView && this.following && this.presenter && !this.isPresenter()) this.applyView(this.lastView);
    this.position();
  }

  // ---- drawing ----------------------------------------------------------

  /**
   * @private
   * @param {import('geojson').FeatureCollection<import('geojson').Geometry, CommuneProps>} geo
   */
  build(geo) {
    const L = /** @type {Leaflet|undefined} */ (Reflect.get(window, 'L'));
    if (!L) {
      this.message('map.loadFailed');
      return;
    }
    const map = L.map(this.mapEl, { zoomSnap: 1, minZoom: 5, maxZoom: 16, attributionControl: false, zoomControl: true });
    this.map = map;
    if (this.cfg.tiles) {
      L.control.attribution({ prefix: false }).addTo(map);
      L.tileLayer(this.cfg.tiles, { attribution: this.cfg.attribution, maxZoom: 19 }).addTo(map);
    }
    const layer = L.geoJSON(geo, {
      style: () => ({ color: BORDER, weight: 0.7, fillColor: ZERO_COLOUR, fillOpacity: 0.85 }),
      onEachFeature: (f, l) => {
        const p = f.properties;
        this.communes.set(p.code, p);
        this.depPopulation += p.population || 0;
        this.layers.set(p.code, /** @type {LPath} */ (l));
        l.on('click', () => { if (!this.ann.drawing) this.select(p.code, 'local'); });
        l.bindTooltip(() => this.tooltip(p.code), { sticky: true, direction: 'top', className: 'commune-tip' });
      },
    }).addTo(map);
    // The paths exist once the map has its first view (fitted, or a presenter's).
    map.whenReady(() => {
      for (const [code, l] of this.layers) l.getElement()?.setAttribute('data-code', code);
      this.render();
    });
    this.bounds = layer.getBounds();
    this.overlays.attach(L, map);
    this.ann.attach(L, map);
    this.fillDatalist();
    map.on('move zoomend', () => {
      this.mapEl.dataset.zoom = String(map.getZoom());
      const c = map.getCenter();
      this.mapEl.dataset.center = `${round6(c.lat)},${round6(c.lng)}`;
      if (this.isPresenter()) this.sendView();
    });
    // Any gesture of a follower on the map detaches it from the presenter.
    for (const ev of ['pointerdown', 'wheel', 'keydown']) {
      this.mapEl.addEventListener(ev, () => this.userMoved(), { passive: true });
    }
    new ResizeObserver(() => this.resized()).observe(this.mapEl);
    this.pane.dataset.ready = 'true';
    this.position();
    this.render();
  }

  /**
   * Gives the map its first viewport once it has a size: the presenter's
   * view when following one, else the whole territory.
   * @private
   */
  position() {
    if (!this.map || this.positioned || this.mapEl.clientWidth === 0) return;
    if (this.lastView && this.following && this.presenter && !this.isPresenter()) {
      this.applyView(this.lastView);
      return;
    }
    if (this.bounds) {
      this.map.fitBounds(this.bounds, { animate: false, padding: [8, 8] });
      this.positioned = true;
    }
  }

  /**
   * Colours every commune and refreshes the figures. All 250-odd paths are
   * restyled each time: a change can move the colour scale's maximum, and
   * it takes a few milliseconds.
   * @private
   */
  render() {
    const live = this.feed.live;
    this.pane.classList.toggle('stale', !live);
    this.pane.dataset.seq = String(this.feed.seq ?? '');
    this.renderStrip(live);
    if (this.map) {
      const scale = this.scale();
      for (const [code, l] of this.layers) {
        const s = this.feed.states.get(code);
        const value = this.value(code);
        const fill = this.mode === 'level' ? levelColour(s?.level ?? 0) : scale.colour(value);
        const sel = code === this.selected;
        l.setStyle({ fillColor: fill, color: sel ? '#ffffff' : BORDER, weight: sel ? 3 : 0.7 });
        const el = l.getElement();
        if (el) {
          el.setAttribute('data-level', String(s?.level ?? 0));
          el.setAttribute('data-value', value === null ? '' : String(Math.round(value * 10) / 10));
        }
      }
      this.renderLegend(scale);
    }
    // The panel is redrawn on every change: cheap, and it must go stale and
    // come back with the rest.
    if (this.selected) this.panel.update(this.feed.states.get(this.selected), live);
  }

  /**
   * The figure a commune shows in the current mode, period and place.
   * @private
   * @param {string} code
   * @returns {number|null}
   */
  value(code) {
    const s = this.feed.states.get(code);
    const n = countOf(s, this.period, this.place);
    if (this.mode === 'rate') return per100k(n, code ? this.communes.get(code)?.population ?? 0 : this.depPopulation);
    if (this.mode === 'level') return s?.level ?? 0;
    return n;
  }

  /** @private */
  scale() {
    let max = 0;
    if (this.mode !== 'level') {
      for (const code of this.layers.keys()) max = Math.max(max, this.value(code) ?? 0);
    }
    return rampScale(max, this.mode === 'count', fmtRate);
  }

  /**
   * @private
   * @param {boolean} live
   */
  renderStrip(live) {
    const s = this.feed.states.get('');
    /** @type {Array<[string, string]>} */
    const cells = [
      ['dep-today', String(countOf(s, 'today', 'all'))],
      ['dep-last7', String(countOf(s, 'last7', 'all'))],
      ['dep-rate7', fmtRate(per100k(countOf(s, 'last7', 'all'), this.depPopulation))],
      ['dep-total', String(countOf(s, 'total', 'all'))],
    ];
    for (const [id, text] of cells) byId(id).textContent = live ? text : '…';
    const lvl = byId('dep-level');
    lvl.dataset.level = live ? String(s?.level ?? 0) : '';
    lvl.textContent = live ? this.i18n.t(`level.${s?.level ?? 0}`) : '…';
    const places = byId('dep-places');
    places.textContent = live && s ? this.i18n.t('map.placesLine', {
      d: s.by_place[0] ?? 0, e: s.by_place[1] ?? 0, h: s.by_place[2] ?? 0, a: s.by_place[3] ?? 0,
    }) : '';
  }

  /**
   * @private
   * @param {{labels: string[], colour: (v: number|null) => string}} scale
   */
  renderLegend(scale) {
    const box = byId('map-legend');
    const title = document.createElement('p');
    title.className = 'legend-title';
    /** @type {Array<[string, string]>} swatch colour, label */
    const rows = [];
    if (this.mode === 'level') {
      title.textContent = this.i18n.t('map.legendLevel');
      LEVEL_COLOURS.forEach((c, i) => rows.push([c, this.i18n.t(`level.${i}`)]));
    } else {
      title.textContent = this.i18n.t(this.mode === 'rate' ? 'map.legendRate' : 'map.legendCount', {
        period: this.i18n.t(`period.${this.period}`).toLowerCase(),
        place: this.i18n.t(`place.${this.place}`).toLowerCase(),
      });
      rows.push([ZERO_COLOUR, '0']);
      scale.labels.forEach((label, i) => rows.push([RAMP[i], label]));
    }
    const list = document.createElement('ul');
    for (const [colour, label] of rows) {
      const li = document.createElement('li');
      li.append(swatch(colour), document.createTextNode(label));
      list.append(li);
    }
    box.replaceChildren(title, list);
    box.dataset.mode = this.mode;
  }

  /**
   * @private
   * @param {string} code
   */
  tooltip(code) {
    const el = document.createElement('div');
    const name = document.createElement('strong');
    name.textContent = this.communes.get(code)?.nom ?? code;
    const v = this.value(code);
    const line = document.createElement('span');
    if (!this.feed.live) line.textContent = '…';
    else if (this.mode === 'level') line.textContent = this.i18n.t(`level.${v ?? 0}`);
    else line.textContent = `${fmtRate(v)} ${this.i18n.t(this.mode === 'rate' ? 'map.unitRate' : 'map.unitCount')}`;
    el.append(name, document.createElement('br'), line);
    return el;
  }

  /**
   * @private
   * @param {string} key
   */
  message(key) {
    const p = byId('map-msg');
    p.hidden = false;
    p.dataset.i18n = key;
    p.textContent = this.i18n.t(key);
  }

  // ---- tools: colour mode, period, place, search -------------------------

  /** @private */
  wireTools() {
    const mode = find(document, '#map-mode', HTMLSelectElement);
    const period = find(document, '#map-period', HTMLSelectElement);
    const place = find(document, '#map-place', HTMLSelectElement);
    mode.value = this.mode;
    period.value = this.period;
    place.value = this.place;
    mode.addEventListener('change', () => { this.mode = /** @type {ColourMode} */ (mode.value); this.render(); });
    period.addEventListener('change', () => { this.period = /** @type {Period} */ (period.value); this.render(); });
    place.addEventListener('change', () => { this.place = /** @type {PlaceFilter} */ (place.value); this.render(); });
    const search = find(document, '#map-search', HTMLInputElement);
    search.addEventListener('change', () => {
      const want = search.value.trim().toLowerCase();
      for (const [code, p] of this.communes) {
        if (p.nom.toLowerCase() === want || code === want) {
          this.select(code, 'local');
          const l = this.layers.get(code);
          if (l && this.map && 'getBounds' in l) this.map.fitBounds(/** @type {import('leaflet').Polygon} */ (l).getBounds(), { maxZoom: 12 });
          search.value = '';
          return;
        }
      }
    });
    byId('map-present').addEventListener('click', () => this.send('presenter', { take: !this.isPresenter() }));
    byId('map-follow-btn').addEventListener('click', () => {
      this.following = !this.following;
      if (this.following && this.lastView) this.applyView(this.lastView);
      this.renderPresenter();
    });
  }

  /** @private */
  fillDatalist() {
    const list = byId('map-communes');
    const names = [...this.communes.values()].sort((a, b) => a.nom.localeCompare(b.nom, 'fr'));
    list.replaceChildren(...names.map((p) => {
      const o = document.createElement('option');
      o.value = p.nom;
      return o;
    }));
  }

  // ---- selection and presenter follow ------------------------------------

  /**
   * Selects a commune ('' closes the panel).
   * @param {string} code
   * @param {'local'|'presenter'} by
   */
  select(code, by) {
    if (by === 'local' && code !== this.selected) this.userMoved();
    const prev = this.selected;
    this.selected = this.communes.has(code) ? code : '';
    if (this.selected) {
      const p = /** @type {CommuneProps} */ (this.communes.get(this.selected));
      this.panel.open(this.selected, p.nom, p.population, this.feed.states.get(this.selected), this.feed.live);
      this.layers.get(this.selected)?.bringToFront();
    } else {
      this.panel.close();
    }
    this.pane.dataset.selected = this.selected;
    if (prev !== this.selected) {
      this.render();
      if (this.isPresenter()) this.sendView();
    }
  }

  /** @private */
  userMoved() {
    if (this.following && this.presenter && !this.isPresenter()) {
      this.following = false;
      this.renderPresenter();
    }
  }

  /** @private */
  isPresenter() {
    return this.presenter !== '' && this.presenter === this.selfId();
  }

  /**
   * @private
   * @param {string} id
   */
  setPresenter(id) {
    const prev = this.presenter;
    this.presenter = id;
    if (id !== prev && id && id !== this.selfId()) {
      this.following = true; // a new presenter: follow by default
      this.lastView = null;
    }
    if (id && id === this.selfId() && prev !== id) this.sendView(); // show them where we are
  }

  /**
   * @private
   * @returns {MapView|null}
   */
  view() {
    if (!this.map || !this.positioned) return null;
    const c = this.map.getCenter();
    return { center: [round6(c.lat), round6(c.lng)], zoom: this.map.getZoom(), commune: this.selected };
  }

  /**
   * @private
   * @param {MapView} v
   */
  applyView(v) {
    if ((v.commune ?? '') !== this.selected) this.select(v.commune ?? '', 'presenter');
    if (!this.map || this.mapEl.clientWidth === 0) {
      this.positioned = false; // hidden (the video tab): position() applies lastView when shown
      return;
    }
    // reset: a same-zoom setView pans by whole pixels and lands up to a pixel
    // off; a reset puts the exact centre (Leaflet's option, not in its types).
    const exact = { animate: false, reset: true };
    this.map.setView([v.center[0], v.center[1]], v.zoom, exact);
    this.positioned = true;
  }

  /** @private */
  renderPresenter() {
    const me = this.isPresenter();
    const btn = byId('map-present');
    btn.hidden = !isHostRole(this.role) || !this.cfg.territory;
    btn.textContent = this.i18n.t(me ? 'map.presentStop' : 'map.presentStart');
    btn.setAttribute('aria-pressed', String(me));
    const bar = byId('map-follow');
    const text = byId('map-follow-text');
    const fb = byId('map-follow-btn');
    bar.hidden = !this.presenter;
    this.pane.dataset.presenter = !this.presenter ? '' : me ? 'self' : 'other';
    this.pane.dataset.follow = this.presenter && !me ? String(this.following) : '';
    if (me) {
      text.textContent = this.i18n.t('map.youPresent');
      fb.hidden = true;
    } else if (this.presenter) {
      const name = this.nameOf(this.presenter);
      text.textContent = this.i18n.t(this.following ? 'map.following' : 'map.detached', { name });
      fb.hidden = false;
      fb.textContent = this.i18n.t(this.following ? 'map.detach' : 'map.follow');
    }
  }

  // ---- status -------------------------------------------------------------

  /**
   * @private
   * @param {FeedStatus} s
   */
  feedStatus(s) {
    const el = byId('map-live');
    el.dataset.status = s;
    el.textContent = this.i18n.t(`map.status.${s}`);
    byId('tab-map').dataset.status = s;
    if (s !== 'live') this.render();
  }

  /** @private */
  relabel() {
    this.feedStatus(this.feed.status);
    this.renderPresenter();
    this.render();
    const msg = byId('map-msg');
    if (!msg.hidden && msg.dataset.i18n) msg.textContent = this.i18n.t(msg.dataset.i18n);
  }
}

/**
 * A legend swatch: an SVG square filled by attribute (the CSP allows no
 * inline style).
 * @param {string} colour
 */
function swatch(colour) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 14 14');
  svg.setAttribute('class', 'swatch');
  svg.setAttribute('aria-hidden', 'true');
  const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
  r.setAttribute('width', '14');
  r.setAttribute('height', '14');
  r.setAttribute('rx', '3');
  r.setAttribute('fill', colour);
  svg.append(r);
  return svg;
}
