// The one way the pages call /api/v1. Two kinds of caller: a page opened
// with a link (#t=TOKEN) sends the token as Bearer; a staff member logged in
// on / rides on the session cookie, which the page cannot read (HttpOnly),
// and proves each state-changing request with the CSRF token the session
// answer gave it.

import { parseRetryAfter } from './declare/common.js';

/**
 * Who the page calls as. token: a link's token, sent as Bearer; '' means the
 * staff session's cookie, with csrf sent on every write. The object is
 * shared by reference, so a refreshed CSRF token reaches every caller.
 * @typedef {{token: string, csrf: string}} Auth
 *
 * @typedef {{id: number|string, login: string, name: string, admin: boolean}} User
 * @typedef {{event: string, role: string}} Membership
 * @typedef {{user: User, csrf: string, memberships: Membership[]}} Session
 */

/** An API refusal, with the server's French message when it gave one. */
export class ApiError extends Error {
  /**
   * @param {number} status  0 when the server could not be reached
   * @param {string} code    the body's "error", or "http" / "offline"
   * @param {string} message
   * @param {number|null} [retryAfterMs]  from Retry-After (429)
   */
  constructor(status, code, message, retryAfterMs = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The staff session's credentials: no token, the cookie does the rest.
 * @param {string} csrf
 * @returns {Auth}
 */
export function sessionAuth(csrf) {
  return { token: '', csrf };
}

/**
 * fetch() with the caller's credentials. Resolves with any HTTP answer;
 * rejects only when the server cannot be reached.
 * @param {Auth} auth
 * @param {string} path  absolute, e.g. /api/v1/events
 * @param {RequestInit} [init]
 * @returns {Promise<Response>}
 */
export function apiFetch(auth, path, init = {}) {
  const headers = new Headers(init.headers);
  const method = (init.method ?? 'GET').toUpperCase();
  if (auth.token) {
    headers.set('Authorization', `Bearer ${auth.token}`);
  } else if (!SAFE_METHODS.has(method) && auth.csrf) {
    headers.set('X-CSRF-Token', auth.csrf);
  }
  return fetch(path, { cache: 'no-store', ...init, method, headers, credentials: 'same-origin' });
}

/**
 * Turns a non-2xx answer into an ApiError with the server's message.
 * @param {Response} res
 * @returns {Promise<ApiError>}
 */
export async function errorOf(res) {
  let code = 'http';
  let message = `HTTP ${res.status}`;
  try {
    const b = await res.json();
    if (b && typeof b.error === 'string') code = b.error;
    if (b && typeof b.message === 'string') message = b.message;
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  return new ApiError(res.status, code, message, parseRetryAfter(res.headers.get('Retry-After')));
}

/**
 * One JSON call: sends body as JSON, returns the parsed answer (null for
 * 204), throws ApiError otherwise (status 0 when offline).
 * @param {Auth} auth
 * @param {string} method
 * @param {string} path  absolute
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function apiJSON(auth, method, path, body) {
  /** @type {RequestInit} */
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  /** @type {Response} */
  let res;
  try {
    res = await apiFetch(auth, path, init);
  } catch {
    throw new ApiError(0, 'offline', 'offline');
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

// ---- the staff session -----------------------------------------------

const NO_AUTH = Object.freeze({ token: '', csrf: '' });

/**
 * The current staff session, or null when not logged in (401).
 * @returns {Promise<Session|null>}
 */
export async function getSession() {
  try {
    return await apiJSON(NO_AUTH, 'GET', '/api/v1/session');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

/**
 * Logs in. Throws ApiError: 401 bad_credentials, 429 rate_limited (with
 * retryAfterMs), 0 offline.
 * @param {string} login
 * @param {string} password
 * @returns {Promise<Session>}
 */
export function logIn(login, password) {
  return apiJSON(NO_AUTH, 'POST', '/api/v1/session', { login, password });
}

/**
 * Ends this session.
 * @param {Auth} auth
 */
export function logOut(auth) {
  return apiJSON(auth, 'DELETE', '/api/v1/session');
}

/**
 * Ends every session of this user, this one included.
 * @param {Auth} auth
 * @returns {Promise<{ended: number}>}
 */
export function logOutEverywhere(auth) {
  return apiJSON(auth, 'POST', '/api/v1/session/logout-all');
}

/**
 * Copies text to the clipboard; falls back to selecting it in an input so
 * that the user can copy by hand (no clipboard on plain HTTP).
 * @param {string} text
 * @param {HTMLInputElement|null} [input]
 * @returns {Promise<boolean>} whether it was copied
 */
export async function copyText(text, input = null) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (input) {
      input.focus();
      input.select();
    }
    return false;
  }
}

/**
 * The sentence that says why a call failed, in the page's language: the
 * server's own message, or that the network is down.
 * @param {import('./i18n.js').I18n} i18n
 * @param {unknown} err
 */
export function failure(i18n, err) {
  const why = err instanceof ApiError && err.status !== 0 ? err.message : i18n.t('common.offline');
  return i18n.t('common.failed', { why });
}
