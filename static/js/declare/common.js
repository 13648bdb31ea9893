// Shared pieces of the declaration and report pages: the API's types, the
// bearer-token fetch, French labels and small DOM helpers. Text from the
// server or the user reaches the page through textContent only.

/**
 * @typedef {'domicile'|'ehpad'|'hopital'|'autre'} Place
 *
 * @typedef {object} Me
 * @property {string} label
 * @property {boolean} operator
 * @property {string} commune
 * @property {string} commune_name
 * @property {string} today        YYYY-MM-DD in the territory's time zone
 * @property {string} event_start  first day a declaration may name, or ''
 * @property {number} max_count
 * @property {Place[]} places
 *
 * @typedef {object} DeclInput
 * @property {string} commune
 * @property {string} date
 * @property {Place} place
 * @property {number} count
 * @property {string} note
 * @property {string} idempotency_key
 *
 * @typedef {object} Declaration
 * @property {string} id
 * @property {string} commune
 * @property {string} date
 * @property {Place} place
 * @property {number} count
 * @property {string} note
 * @property {string} idempotency_key
 * @property {string} created_at
 * @property {number} revision
 *
 * @typedef {object} FieldError
 * @property {string} field
 * @property {string} code
 * @property {string} message     French
 * @property {string} message_en
 *
 * @typedef {object} ApiError
 * @property {string} error
 * @property {string} message
 * @property {FieldError[]} [errors]
 *
 * @typedef {object} ApiResult
 * @property {number} status        0 when the network failed (no answer)
 * @property {unknown} body         parsed JSON, or null
 * @property {number|null} retryAfterMs
 */

/** Display order and French names of the places. */
export const PLACES = /** @type {const} */ ([
  ['domicile', 'Domicile'],
  ['ehpad', 'EHPAD'],
  ['hopital', 'Hôpital'],
  ['autre', 'Autre'],
]);

/** @param {string} p */
export function placeLabel(p) {
  return PLACES.find(([k]) => k === p)?.[1] ?? p;
}

/** @param {string} p @returns {p is Place} */
export function isPlace(p) {
  return PLACES.some(([k]) => k === p);
}

/** The network gives up on a request after this long: a hung request is a failed one. */
const REQUEST_TIMEOUT_MS = 15000;

/**
 * Parses Retry-After (seconds or an HTTP date) into milliseconds.
 * @param {string|null} v
 * @returns {number|null}
 */
export function parseRetryAfter(v) {
  if (!v) return null;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.max(0, t - Date.now());
}

/**
 * One call to the API with the link's token. It never throws: a network
 * failure or a timeout is status 0, which callers treat as "retry later".
 * @param {string} token  '' for a staff session: the cookie (reads only; writes need api.js's CSRF header)
 * @param {string} method
 * @param {string} path      below /api/v1
 * @param {unknown} [body]
 * @returns {Promise<ApiResult>}
 */
export async function api(token, method, path, body) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS);
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    const res = await fetch(`/api/v1${path}`, {
      method, headers, cache: 'no-store', signal: ctl.signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let parsed = null;
    try {
      parsed = await res.json();
    } catch {
      // A proxy's HTML error page: the status says enough.
    }
    return { status: res.status, body: parsed, retryAfterMs: parseRetryAfter(res.headers.get('Retry-After')) };
  } catch {
    return { status: 0, body: null, retryAfterMs: null };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The error of a non-2xx answer, in French.
 * @param {ApiResult} r
 * @returns {ApiError}
 */
export function apiError(r) {
  const b = /** @type {Partial<ApiError>|null} */ (r.body);
  if (b && typeof b.message === 'string') {
    return { error: b.error ?? 'error', message: b.message, errors: Array.isArray(b.errors) ? b.errors : [] };
  }
  if (r.status === 0) return { error: 'network', message: 'Pas de réseau : le serveur ne répond pas.', errors: [] };
  return { error: 'http', message: `Erreur du serveur (${r.status}).`, errors: [] };
}

const dayFmt = new Intl.DateTimeFormat('fr-FR', { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
const dayFmtNoYear = new Intl.DateTimeFormat('fr-FR', { weekday: 'short', day: 'numeric', month: 'short', timeZone: 'UTC' });
const longDayFmt = new Intl.DateTimeFormat('fr-FR', { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });

/**
 * A YYYY-MM-DD day (a calendar day, not an instant) in French: short,
 * "lun. 9 mars" (the year only when it is not this year), or long,
 * "lundi 9 mars 2026".
 * @param {string} day
 * @param {boolean} [long]
 */
export function frenchDay(day, long = false) {
  const t = Date.parse(`${day}T00:00:00Z`);
  if (Number.isNaN(t)) return day;
  if (long) return longDayFmt.format(t);
  return (day.slice(0, 4) === String(new Date().getFullYear()) ? dayFmtNoYear : dayFmt).format(t);
}

/**
 * Adds n days to a YYYY-MM-DD day.
 * @param {string} day
 * @param {number} n
 */
export function addDays(day, n) {
  const t = Date.parse(`${day}T00:00:00Z`);
  return new Date(t + n * 86400000).toISOString().slice(0, 10);
}

/** @param {string} s */
export function isDay(s) {
  return /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && addDays(s, 0) === s;
}

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page lacks #${id}`);
  return el;
}

/**
 * @template {Element} T
 * @param {ParentNode} root
 * @param {string} sel
 * @param {new (...args: any[]) => T} type
 * @returns {T}
 */
export function find(root, sel, type) {
  const el = root.querySelector(sel);
  if (!(el instanceof type)) throw new Error(`missing ${sel}`);
  return el;
}

/**
 * Creates an element with a class and text.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [cls]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * The parameters of the fragment (#t=TOKEN, #c=CODE). The fragment is never
 * sent to the server.
 */
export function fragment() {
  return new URLSearchParams(location.hash.slice(1));
}

/**
 * Removes the fragment from the address bar once the token is kept, so that
 * a screenshot or a shared screen does not leak it.
 */
export function clearFragment() {
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
}

/**
 * localStorage that may be missing (private modes, policies): reads give
 * null, writes are dropped.
 */
export const store = {
  /** @param {string} k */
  get(k) {
    try {
      return localStorage.getItem(k);
    } catch {
      return null;
    }
  },
  /** @param {string} k @param {string} v */
  set(k, v) {
    try {
      localStorage.setItem(k, v);
      return true;
    } catch {
      return false;
    }
  },
  /** @param {string} k */
  del(k) {
    try {
      localStorage.removeItem(k);
    } catch {
      // nothing stored, nothing to remove
    }
  },
  /**
   * @template T
   * @param {string} k
   * @returns {T|null}
   */
  getJSON(k) {
    const v = this.get(k);
    if (!v) return null;
    try {
      return /** @type {T} */ (JSON.parse(v));
    } catch {
      return null;
    }
  },
  /** @param {string} k @param {unknown} v */
  setJSON(k, v) {
    return this.set(k, JSON.stringify(v));
  },
};
