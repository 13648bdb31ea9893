// The commune panel of the map: name, alert level, figures by place for
// each period (from the live states), and a small daily series fetched from
// the API, fetched again whenever the live feed brings a newer version.

import { PLACES, countOf, per100k, levelColour, daysEnding } from './mapdata.js';
import { byId } from './ui.js';
import { apiFetch } from './api.js';

/**
 * @typedef {import('./mapdata.js').MapState} MapState
 * @typedef {import('./mapdata.js').Period} Period
 * @typedef {import('./i18n.js').I18n} I18n
 * @typedef {{date: string, domicile: number, ehpad: number, hopital: number, autre: number, total: number}} DayCounts
 * @typedef {{code: string, version: number, name: string, days: DayCounts[]}} CommuneSeries
 */

const SVG = 'http://www.w3.org/2000/svg';
/** Days shown in the sparkline. */
export const SPARK_DAYS = 30;
const PERIODS = /** @type {Period[]} */ (['today', 'last7', 'total']);

/** @param {number} n */
function fmtInt(n) {
  return new Intl.NumberFormat(document.documentElement.lang || 'fr').format(n);
}

/** @param {number|null} n */
export function fmtRate(n) {
  if (n === null) return '–';
  return new Intl.NumberFormat(document.documentElement.lang || 'fr', { maximumFractionDigits: 1 }).format(n);
}

export class CommunePanel {
  /**
   * @param {{i18n: I18n, auth: import('./api.js').Auth, timezoneToday: () => string, onClose: () => void}} opts
   */
  constructor(opts) {
    this.i18n = opts.i18n;
    this.auth = opts.auth;
    this.today = opts.timezoneToday;
    this.el = byId('commune');
    this.code = '';
    this.name = '';
    this.population = 0;
    /** @type {CommuneSeries|null} */
    this.series = null;
    /** version of the state the series must at least reflect */
    this.wanted = 0;
    this.fetching = false;
    this.fetches = 0;
    byId('cp-close').addEventListener('click', () => opts.onClose());
  }

  /**
   * Opens the panel on a commune.
   * @param {string} code
   * @param {string} name
   * @param {number} population
   * @param {MapState|undefined} state
   * @param {boolean} live
   */
  open(code, name, population, state, live) {
    const changed = code !== this.code;
    this.code = code;
    this.name = name;
    this.population = population;
    this.el.hidden = false;
    this.el.dataset.code = code;
    if (changed) {
      this.series = null;
      this.wanted = 0;
      this.drawSpark();
    }
    this.update(state, live);
    if (changed) void this.fetch();
  }

  close() {
    this.code = '';
    this.series = null;
    this.el.hidden = true;
    delete this.el.dataset.code;
  }

  /**
   * Redraws the figures from the live state; a newer version than the
   * series we hold fetches the series again.
   * @param {MapState|undefined} s
   * @param {boolean} live  false: the numbers may be stale and are not shown
   */
  update(s, live) {
    if (!this.code) return;
    byId('cp-name').textContent = this.name;
    const level = s?.level ?? 0;
    const badge = byId('cp-level');
    badge.dataset.level = String(level);
    badge.textContent = live ? this.i18n.t(`level.${level}`) : '…';
    byId('cp-meta').textContent = this.i18n.t('map.communeMeta', { code: this.code, pop: this.population ? fmtInt(this.population) : '?' });
    const swatch = byId('cp-swatch');
    swatch.setAttribute('fill', live ? levelColour(level) : 'transparent');
    this.fillTable(s, live);
    const rate = per100k(countOf(s, 'last7', 'all'), this.population);
    byId('cp-rate').textContent = live ? this.i18n.t('map.rateLine', { rate: fmtRate(rate) }) : '…';
    this.el.dataset.live = String(live);
    this.el.dataset.v = String(s?.v ?? 0);
    if (live && s && s.v > this.wanted) {
      this.wanted = s.v;
      if (this.series && this.series.version < s.v) void this.fetch();
    }
  }

  /**
   * @private
   * @param {MapState|undefined} s
   * @param {boolean} live
   */
  fillTable(s, live) {
    const body = byId('cp-rows');
    /** @type {HTMLTableRowElement[]} */
    const rows = [];
    for (const place of [...PLACES, 'all']) {
      const tr = document.createElement('tr');
      if (place === 'all') tr.className = 'sum';
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = this.i18n.t(place === 'all' ? 'place.sum' : `place.${place}`);
      tr.append(th);
      for (const period of PERIODS) {
        const td = document.createElement('td');
        td.dataset.place = place;
        td.dataset.period = period;
        td.textContent = live ? fmtInt(countOf(s, period, /** @type {import('./mapdata.js').PlaceFilter} */ (place))) : '…';
        tr.append(td);
      }
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  }

  /**
   * Fetches the commune's series; one request at a time, and one more if
   * a newer version was announced meanwhile.
   * @private
   */
  async fetch() {
    if (this.fetching || !this.code) return;
    this.fetching = true;
    const code = this.code;
    try {
      const res = await apiFetch(this.auth, `/api/v1/aggregates?commune=${encodeURIComponent(code)}`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      /** @type {CommuneSeries} */
      const data = await res.json();
      this.fetches++;
      if (code === this.code) {
        this.series = data;
        this.drawSpark();
      }
    } catch (err) {
      console.warn('commune series', code, err);
      if (code === this.code) byId('cp-spark-cap').textContent = this.i18n.t('map.seriesFailed');
    } finally {
      this.fetching = false;
    }
    if (this.code && this.series && this.series.code === this.code && this.series.version < this.wanted) void this.fetch();
  }

  /**
   * Daily totals of the last SPARK_DAYS days as bars.
   * @private
   */
  drawSpark() {
    const svg = byId('cp-spark');
    const cap = byId('cp-spark-cap');
    if (!this.series) {
      svg.replaceChildren();
      cap.textContent = this.code ? this.i18n.t('map.seriesLoading') : '';
      return;
    }
    const byDay = new Map(this.series.days.map((d) => [d.date, d.total]));
    const days = daysEnding(this.today(), SPARK_DAYS);
    const values = days.map((d) => byDay.get(d) ?? 0);
    const max = Math.max(1, ...values);
    const w = 300;
    const h = 60;
    const bw = w / days.length;
    const bars = values.map((v, i) => {
      const r = document.createElementNS(SVG, 'rect');
      const bh = v > 0 ? Math.max(2, (v / max) * (h - 4)) : 1;
      r.setAttribute('x', (i * bw + 0.5).toFixed(1));
      r.setAttribute('y', (h - bh).toFixed(1));
      r.setAttribute('width', Math.max(1, bw - 1).toFixed(1));
      r.setAttribute('height', bh.toFixed(1));
      r.setAttribute('class', v > 0 ? 'bar' : 'bar zero');
      const title = document.createElementNS(SVG, 'title');
      title.textContent = `${days[i]} : ${v}`;
      r.append(title);
      return r;
    });
    svg.replaceChildren(...bars);
    svg.dataset.version = String(this.series.version);
    svg.dataset.sum = String(values.reduce((a, b) => a + b, 0));
    cap.textContent = this.i18n.t('map.sparkCaption', { n: SPARK_DAYS, max: fmtInt(Math.max(...values)) });
  }
}
