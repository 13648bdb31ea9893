// The outbox: every declaration is written to IndexedDB with its
// idempotency key BEFORE the first send, and stays there until the server
// has acknowledged it. A send that may or may not have reached the server is
// simply repeated with the same key: the server answers the original
// (200) instead of counting it again (201), so a retry never double counts.

import { api, apiError } from './common.js';

/**
 * @typedef {import('./common.js').DeclInput} DeclInput
 * @typedef {import('./common.js').FieldError} FieldError
 * @typedef {import('./common.js').ApiResult} ApiResult
 *
 * @typedef {'pending'|'sent'|'error'} Status
 *
 * @typedef {object} OutboxItem
 * @property {string} key            the idempotency key; the primary key
 * @property {string} commune
 * @property {DeclInput} input
 * @property {Status} status
 * @property {number} attempts       sends that got no definite answer
 * @property {number} createdAt      ms since the epoch
 * @property {number} [sentAt]
 * @property {string} [declarationId]
 * @property {string} [error]        French, for status 'error'
 * @property {FieldError[]} [fieldErrors]
 */

const DB_NAME = 'crisisroom-declare';
const STORE = 'outbox';

/** @param {IDBRequest|IDBTransaction} r @returns {Promise<any>} */
function done(r) {
  return new Promise((resolve, reject) => {
    if (r instanceof IDBTransaction) {
      r.oncomplete = () => resolve(undefined);
      r.onerror = () => reject(r.error);
      r.onabort = () => reject(r.error ?? new Error('transaction aborted'));
    } else {
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    }
  });
}

/** The outbox in IndexedDB: it survives reloads, closed tabs and restarts. */
export class OutboxDB {
  /** @param {IDBDatabase} db */
  constructor(db) {
    this.db = db;
    this.durable = true;
  }

  /** @returns {Promise<OutboxDB>} */
  static async open() {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => {
      const os = req.result.createObjectStore(STORE, { keyPath: 'key' });
      os.createIndex('commune', 'commune');
    };
    return new OutboxDB(await done(req));
  }

  /** @param {OutboxItem} item */
  async put(item) {
    const tx = this.db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).put(item);
    await done(tx); // resolved only once the write is committed
  }

  /** @param {string} key @returns {Promise<OutboxItem|undefined>} */
  async get(key) {
    return done(this.db.transaction(STORE).objectStore(STORE).get(key));
  }

  /** @param {string} key */
  async delete(key) {
    const tx = this.db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).delete(key);
    await done(tx);
  }

  /** @param {string} commune @returns {Promise<OutboxItem[]>} */
  async list(commune) {
    /** @type {OutboxItem[]} */
    const items = await done(this.db.transaction(STORE).objectStore(STORE).index('commune').getAll(commune));
    return items.sort((a, b) => a.createdAt - b.createdAt);
  }
}

/**
 * The outbox when IndexedDB is unavailable (some private modes): it works
 * while the page is open, and the page says that it will not survive a
 * reload.
 */
export class MemoryOutbox {
  constructor() {
    /** @type {Map<string, OutboxItem>} */
    this.items = new Map();
    this.durable = false;
  }

  /** @param {OutboxItem} item */
  async put(item) {
    this.items.set(item.key, structuredClone(item));
  }

  /** @param {string} key */
  async get(key) {
    const it = this.items.get(key);
    return it && structuredClone(it);
  }

  /** @param {string} key */
  async delete(key) {
    this.items.delete(key);
  }

  /** @param {string} commune */
  async list(commune) {
    return [...this.items.values()].filter((i) => i.commune === commune).map((i) => structuredClone(i))
      .sort((a, b) => a.createdAt - b.createdAt);
  }
}

/** @returns {Promise<OutboxDB|MemoryOutbox>} */
export async function openOutbox() {
  try {
    return await OutboxDB.open();
  } catch {
    return new MemoryOutbox();
  }
}

/** A fresh idempotency key (the server accepts 8–100 of [A-Za-z0-9_-]). */
export function newKey() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  // randomUUID needs a secure context; getRandomValues does not.
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Backoff between sends without a definite answer. */
export const BACKOFF = { baseMs: 1000, maxMs: 60000, retryAfterMaxMs: 10 * 60000 };

/**
 * The wait before the next try: exponential with jitter, or what the
 * server asked for with Retry-After.
 * @param {number} attempts  tries so far (≥ 1)
 * @param {number|null} retryAfterMs
 * @param {() => number} [rand]
 */
export function backoffDelay(attempts, retryAfterMs, rand = Math.random) {
  if (retryAfterMs !== null) return Math.min(retryAfterMs, BACKOFF.retryAfterMaxMs);
  const ceil = Math.min(BACKOFF.maxMs, BACKOFF.baseMs * 2 ** Math.min(attempts - 1, 16));
  return Math.round(ceil / 2 + rand() * (ceil / 2));
}

/**
 * What an answer means for an item: a definite yes, a definite no, or
 * "unknown, try again" (no answer, 408, 429, 5xx: the server may or may
 * not have stored it, and the same key makes the retry safe).
 * @param {number} status
 * @returns {'sent'|'retry'|'rejected'}
 */
export function classify(status) {
  if (status === 200 || status === 201) return 'sent';
  if (status === 0 || status === 408 || status === 429 || status >= 500) return 'retry';
  return 'rejected';
}

/**
 * Sends the outbox of one commune: on start, when the browser says it is
 * online again, after each new declaration and on a backoff timer. One
 * flush runs at a time, across tabs too (Web Locks), so that two tabs do
 * not race on one item (harmless anyway thanks to the key, but noisy).
 */
export class Sender {
  /**
   * @param {object} o
   * @param {OutboxDB|MemoryOutbox} o.db
   * @param {string} o.token
   * @param {string} o.commune
   * @param {(items: OutboxItem[]) => void} o.onChange  called after every change
   * @param {(r: ApiResult, item: OutboxItem) => void} [o.onAnswer]
   */
  constructor({ db, token, commune, onChange, onAnswer }) {
    this.db = db;
    this.token = token;
    this.commune = commune;
    this.onChange = onChange;
    this.onAnswer = onAnswer ?? (() => {});
    /** @type {Map<string, number>} key → earliest next try (ms) */
    this.notBefore = new Map();
    /** @type {Promise<void>|null} */
    this.running = null;
    this.again = false;
    this.force = false;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.timer = undefined;
  }

  start() {
    // The browser's online event: try everything now, whatever the backoff.
    window.addEventListener('online', () => void this.flush(true));
    return this.flush(true);
  }

  /**
   * Sends what is due (everything pending when force is set). Resolves when
   * this flush, and any asked for while it ran, is over.
   * @param {boolean} [force]
   * @returns {Promise<void>}
   */
  flush(force = false) {
    this.force ||= force;
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          const f = this.force;
          this.force = false;
          await this.locked(() => this.sendDue(f));
        } while (this.again);
      } finally {
        this.running = null;
      }
      await this.report();
    })();
    return this.running;
  }

  /** @param {() => Promise<void>} fn */
  async locked(fn) {
    if (navigator.locks?.request) {
      await navigator.locks.request(`crisisroom-outbox-${this.commune}`, fn);
    } else {
      await fn();
    }
  }

  /** @param {boolean} force */
  async sendDue(force) {
    clearTimeout(this.timer);
    const now = Date.now();
    // Read inside the lock: another tab may have sent an item meanwhile.
    for (const item of await this.db.list(this.commune)) {
      if (item.status !== 'pending') continue;
      if (!force && (this.notBefore.get(item.key) ?? 0) > now) continue;
      if (!(await this.sendOne(item))) break; // no network: the rest would fail too
    }
    this.schedule();
  }

  /**
   * One try. Returns false when the network is down (to stop the round).
   * @param {OutboxItem} item
   */
  async sendOne(item) {
    const r = await api(this.token, 'POST', '/declarations', item.input);
    this.onAnswer(r, item);
    // The item may have been discarded or edited while the request flew.
    const cur = await this.db.get(item.key);
    if (!cur || cur.status !== 'pending' || JSON.stringify(cur.input) !== JSON.stringify(item.input)) return true;
    switch (classify(r.status)) {
      case 'sent': {
        const d = /** @type {{id?: string}} */ (r.body ?? {});
        await this.db.put({ ...cur, status: 'sent', sentAt: Date.now(), declarationId: d.id, error: undefined, fieldErrors: undefined });
        this.notBefore.delete(item.key);
        return true;
      }
      case 'retry': {
        const attempts = cur.attempts + 1;
        await this.db.put({ ...cur, attempts });
        this.notBefore.set(item.key, Date.now() + backoffDelay(attempts, r.retryAfterMs));
        return r.status !== 0;
      }
      default: {
        // A definite no (422 invalid, 401 revoked link, 403…): retrying
        // cannot help; the item waits for the user to fix or discard it.
        const e = apiError(r);
        await this.db.put({ ...cur, status: 'error', error: e.message, fieldErrors: e.errors ?? [] });
        this.notBefore.delete(item.key);
        return true;
      }
    }
  }

  /** Arms the timer for the earliest pending retry. */
  schedule() {
    clearTimeout(this.timer);
    let next = Infinity;
    for (const t of this.notBefore.values()) next = Math.min(next, t);
    if (next === Infinity) return;
    this.timer = setTimeout(() => void this.flush(), Math.max(0, next - Date.now()));
  }

  async report() {
    this.onChange(await this.db.list(this.commune));
  }

  /**
   * The next automatic try of an item, in ms from now (null: none planned).
   * @param {string} key
   */
  nextTry(key) {
    const t = this.notBefore.get(key);
    return t === undefined ? null : Math.max(0, t - Date.now());
  }
}
