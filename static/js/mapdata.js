// The live map's data, without the DOM: the gapless feed of commune states
// (snapshot, numbered deltas, resync), the figure a choropleth shows for a
// period and a place, and the colour scales.

/**
 * One commune's compact state as the server pushes it (livemap.State);
 * code "" is the département.
 * @typedef {object} MapState
 * @property {string} code
 * @property {number} v            version: a newer state has a larger v
 * @property {number} total
 * @property {number} today
 * @property {number} last7
 * @property {number} rate7
 * @property {number} level        0 normal (vert) … 3 crise (rouge)
 * @property {number[]} by_place   domicile, ehpad, hopital, autre since the start
 * @property {number[]} [today_by_place]
 * @property {number[]} [last7_by_place]
 *
 * @typedef {'today'|'last7'|'total'} Period
 * @typedef {'all'|'domicile'|'ehpad'|'hopital'|'autre'} PlaceFilter
 * @typedef {'level'|'count'|'rate'} ColourMode
 * @typedef {'connecting'|'syncing'|'live'|'reconnecting'|'off'} FeedStatus
 */

export const PLACES = /** @type {const} */ (['domicile', 'ehpad', 'hopital', 'autre']);

/** Alert levels in the French colour scale: vert, jaune, orange, rouge. */
export const LEVEL_COLOURS = ['#2da44e', '#f2d024', '#ff8c1a', '#e1000f'];

/** Sequential ramp for counts and rates (kept apart from the alert colours). */
export const RAMP = ['#dadaeb', '#bcbddc', '#9e9ac8', '#756bb1', '#54278f'];
export const ZERO_COLOUR = '#3a4452';

/** How long a resync may stay unanswered before it is asked again. */
const RESYNC_RETRY_MS = 4000;

/**
 * Keeps the map's states exactly in step with the server. On subscribe
 * the server sends a snapshot; each change then comes as a delta numbered
 * seq+1. A gap (a lost or reordered delta) or a new socket means the states
 * may be stale: the feed asks for a snapshot again and reports itself not
 * live until it has one, so the page never shows a number it cannot vouch for.
 */
export class MapFeed {
  /**
   * @param {{send: (type: string, data: any) => string|null,
   *   onChange: (codes: string[]|null) => void,
   *   onStatus: (s: FeedStatus) => void,
   *   log?: (msg: string) => void}} opts
   *   onChange gets the changed codes, or null after a snapshot (everything).
   */
  constructor(opts) {
    this.send = opts.send;
    this.onChange = opts.onChange;
    this.onStatus = opts.onStatus;
    this.log = opts.log ?? (() => {});
    /** @type {Map<string, MapState>} */
    this.states = new Map();
    /** @type {number|null} seq of the last state applied; null while waiting for a snapshot */
    this.seq = null;
    /** @type {FeedStatus} */
    this.status = 'connecting';
    this.snapshots = 0;
    this.resyncs = 0;
    /** @type {string|null} id of our subscribe request, to match its error */
    this.subscribeId = null;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.resyncTimer = undefined;
  }

  /** The socket is joined (fresh or resumed): a new socket watches nothing yet. */
  subscribe() {
    this.seq = null;
    this.subscribeId = this.send('subscribe', { topic: 'map' });
    this.setStatus(this.subscribeId ? 'syncing' : 'reconnecting');
  }

  /** The socket dropped: whatever comes next starts from a snapshot. */
  connectionLost() {
    this.seq = null;
    clearTimeout(this.resyncTimer);
    if (this.status !== 'off') this.setStatus('reconnecting');
  }

  /** The server has no map (no territory): stop asking. */
  unavailable() {
    clearTimeout(this.resyncTimer);
    this.setStatus('off');
  }

  /** @param {{seq: number, states: MapState[]}} snap */
  snapshot(snap) {
    clearTimeout(this.resyncTimer);
    this.states.clear();
    for (const s of snap.states ?? []) this.states.set(s.code, s);
    this.seq = snap.seq;
    this.snapshots++;
    this.setStatus('live');
    this.onChange(null);
  }

  /** @param {{seq: number, states: MapState[]}} d */
  delta(d) {
    if (this.seq === null) return; // a snapshot is on its way and covers it
    if (d.seq <= this.seq) return; // already in the snapshot we have
    if (d.seq !== this.seq + 1) {
      this.log(`map: gap, have seq ${this.seq}, got ${d.seq}: resync`);
      this.resync();
      return;
    }
    this.seq = d.seq;
    /** @type {string[]} */
    const changed = [];
    for (const s of d.states ?? []) {
      const old = this.states.get(s.code);
      if (old && old.v > s.v) continue; // never go back in time
      this.states.set(s.code, s);
      changed.push(s.code);
    }
    if (changed.length) this.onChange(changed);
  }

  /** Asks for a fresh snapshot, and again if none comes. */
  resync() {
    this.seq = null;
    this.resyncs++;
    this.setStatus('syncing');
    clearTimeout(this.resyncTimer);
    if (this.send('resync', { topic: 'map' }) === null) return; // socket down: the next join subscribes
    this.resyncTimer = setTimeout(() => { if (this.seq === null && this.status === 'syncing') this.resync(); }, RESYNC_RETRY_MS);
  }

  /** @returns {boolean} whether the figures are current */
  get live() {
    return this.status === 'live';
  }

  /**
   * @private
   * @param {FeedStatus} s
   */
  setStatus(s) {
    if (this.status === s) return;
    this.status = s;
    this.onStatus(s);
  }
}

/**
 * The count a state shows for a period and a place.
 * @param {MapState|undefined} s
 * @param {Period} period
 * @param {PlaceFilter} place
 * @returns {number}
 */
export function countOf(s, period, place) {
  if (!s) return 0;
  if (place === 'all') return s[period] ?? 0;
  const i = PLACES.indexOf(place);
  const split = period === 'today' ? s.today_by_place : period === 'last7' ? s.last7_by_place : s.by_place;
  return split?.[i] ?? 0;
}

/**
 * Deaths per 100,000 inhabitants, or null when the population is unknown.
 * @param {number} count
 * @param {number} population
 * @returns {number|null}
 */
export function per100k(count, population) {
  return population > 0 ? (count * 100000) / population : null;
}

/**
 * A round upper bound: 1, 2, 5, 10, 20, 50…
 * @param {number} v
 */
export function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) {
    if (v <= m * p) return m * p;
  }
  return 10 * p;
}

/**
 * A sequential scale from 0 to a round maximum in RAMP.length classes;
 * zero has its own colour so that "nothing declared" reads at a glance.
 * @param {number} max  the largest value shown
 * @param {boolean} integer  counts: whole-number classes
 * @param {(n: number) => string} fmt  number format of the labels
 * @returns {{labels: string[], colour: (v: number|null) => string}}
 *   labels[i] names class i (RAMP[i])
 */
export function rampScale(max, integer, fmt) {
  const top = integer ? Math.max(niceCeil(max), RAMP.length) : niceCeil(max);
  const step = top / RAMP.length;
  const labels = RAMP.map((_, i) => {
    const lo = step * i;
    const hi = step * (i + 1);
    if (integer) return lo + 1 === hi ? fmt(hi) : `${fmt(lo + 1)} – ${fmt(hi)}`;
    return `${fmt(lo)} – ${fmt(hi)}`;
  });
  return {
    labels,
    colour: (v) => {
      if (v === null || !(v > 0)) return ZERO_COLOUR;
      const i = Math.min(RAMP.length - 1, Math.max(0, Math.ceil(v / step) - 1));
      return RAMP[i];
    },
  };
}

/**
 * @param {number} level
 * @returns {string}
 */
export function levelColour(level) {
  return LEVEL_COLOURS[Math.max(0, Math.min(3, level | 0))];
}

/**
 * Calls fn at most once per interval with the latest arguments: the first
 * call goes at once, later ones are folded into one trailing call.
 * @template {any[]} A
 * @param {(...args: A) => void} fn
 * @param {number} ms
 * @returns {(...args: A) => void}
 */
export function throttle(fn, ms) {
  let last = -Infinity;
  /** @type {A|null} */
  let pending = null;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  const fire = () => {
    timer = undefined;
    if (!pending) return;
    const args = pending;
    pending = null;
    last = performance.now();
    fn(...args);
  };
  return (...args) => {
    pending = args;
    if (timer !== undefined) return;
    const wait = last + ms - performance.now();
    if (wait <= 0) fire();
    else timer = setTimeout(fire, wait);
  };
}

/**
 * Today's date (YYYY-MM-DD) in a time zone: the territory's "today" may
 * not be the browser's.
 * @param {string} timeZone
 * @param {Date} [now]
 */
export function todayIn(timeZone, now = new Date()) {
  try {
    return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
  } catch {
    return now.toISOString().slice(0, 10);
  }
}

/**
 * The n days ending at day (YYYY-MM-DD), oldest first.
 * @param {string} day
 * @param {number} n
 * @returns {string[]}
 */
export function daysEnding(day, n) {
  const end = Date.UTC(+day.slice(0, 4), +day.slice(5, 7) - 1, +day.slice(8, 10));
  /** @type {string[]} */
  const out = [];
  for (let i = n - 1; i >= 0; i--) out.push(new Date(end - i * 86400000).toISOString().slice(0, 10));
  return out;
}
