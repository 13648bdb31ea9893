// The main courante's data: its HTTP API (/api/v1/events/…, with the room
// link's token or the staff session, see api.js), the filters, and the
// rendering of one entry shared by the room's panel and the printable view. Everything a person wrote
// reaches the page through textContent only.

/**
 * @typedef {{id: string, label: string, retired?: boolean}} Tag
 * @typedef {{slug: string, parent: string, title: string, kind: string, room: string, created_at: string,
 *   created_by: string, last_seq: number, tags: Tag[]}} LogEvent
 * @typedef {{name: string, type: string, size: number, sha256: string}} Attachment
 * @typedef {{id: string, event: string, seq: number, kind: string, text: string, tags: string[],
 *   author_id: string, author_name: string, author_label: string, created_at: string, event_time?: string,
 *   commune?: string, annotation?: string, corrects?: string, corrected_by?: string[],
 *   chat?: {name: string, at: string}, attachment?: Attachment}} Entry
 * @typedef {{event: string, version: number, severity: string, criteria: string, situation: string,
 *   stakes: string, means: string, next_point: string, author_name: string, at: string}} Board
 * @typedef {{room: string, events: LogEvent[], boards: Record<string, Board>}} Snapshot
 * @typedef {{q: string, tag: string, author: string, from: string, to: string, tree: boolean}} Filters
 * @typedef {import('./i18n.js').I18n} I18n
 * @typedef {import('./api.js').Auth} Auth
 */

import { ApiError, apiFetch, errorOf } from './api.js';

export { ApiError };

/** The main courante's HTTP API. */
export class LogApi {
  /** @param {Auth} auth  the link's token, or the staff session */
  constructor(auth) {
    this.auth = auth;
  }

  /**
   * @param {string} path  under /api/v1
   * @param {RequestInit} [init]
   * @returns {Promise<Response>}
   */
  async raw(path, init = {}) {
    // A network failure rejects as a TypeError, which callers tell apart
    // from a refusal.
    const res = await apiFetch(this.auth, `/api/v1${path}`, init);
    if (!res.ok) throw await errorOf(res);
    return res;
  }

  /**
   * @param {string} path
   * @param {RequestInit} [init]
   * @returns {Promise<any>}
   */
  async json(path, init) {
    return (await this.raw(path, init)).json();
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {any} body
   */
  send(method, path, body) {
    return this.json(path, { method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  }

  /** @returns {Promise<{home: string, role: string, events: LogEvent[], kinds: string[], severities: string[]}>} */
  events() {
    return this.json('/events');
  }

  /**
   * @param {string} slug
   * @param {Filters} f
   * @param {{before?: string, after?: string, desc?: boolean, limit?: number}} page
   * @returns {Promise<{entries: Entry[], more: boolean}>}
   */
  list(slug, f, page) {
    const p = filterParams(f);
    if (page.before) p.set('before', page.before);
    if (page.after) p.set('after', page.after);
    if (page.desc) p.set('order', 'desc');
    if (page.limit) p.set('limit', String(page.limit));
    return this.page(`/events/${encodeURIComponent(slug)}/log?${p}`);
  }

  /**
   * One page of the list: the body is the entries, a header says whether
   * there are more.
   * @param {string} path
   * @returns {Promise<{entries: Entry[], more: boolean}>}
   */
  async page(path) {
    const res = await this.raw(path);
    return { entries: await res.json(), more: res.headers.get('X-More') === 'true' };
  }

  /**
   * Writes an entry; with a file, as multipart (the entry as JSON in "entry").
   * @param {string} slug
   * @param {Record<string, any>} entry
   * @param {File|null} file
   * @returns {Promise<Entry>}
   */
  write(slug, entry, file) {
    const path = `/events/${encodeURIComponent(slug)}/log`;
    if (!file) return this.send('POST', path, entry);
    const form = new FormData();
    form.append('entry', JSON.stringify(entry));
    form.append('file', file, file.name);
    return this.json(path, { method: 'POST', body: form });
  }

  /**
   * Downloads a response as a file, under the server's name.
   * @param {string} path
   * @param {string} fallback
   */
  async download(path, fallback) {
    const res = await this.raw(path);
    const cd = res.headers.get('Content-Disposition') ?? '';
    const m = /filename\*=UTF-8''([^;]+)|filename="?([^";]+)"?/i.exec(cd);
    const name = m ? decodeURIComponent(m[1] ?? m[2]) : fallback;
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }
}

/**
 * The filters as query parameters (the list, the CSV and the printable view
 * take the same).
 * @param {Filters} f
 */
export function filterParams(f) {
  const p = new URLSearchParams();
  if (f.q) p.set('q', f.q);
  if (f.tag) p.append('tag', f.tag);
  if (f.author) p.set('author', f.author);
  if (f.from) p.set('from', f.from);
  if (f.to) p.set('to', f.to);
  if (f.tree) p.set('tree', '1');
  return p;
}

/** @param {string} s */
const fold = (s) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();

/**
 * Whether a live entry belongs in a filtered list, as the server would
 * decide (search: every word starts a word of the text).
 * @param {Entry} e
 * @param {Filters} f  from and to are ISO times
 */
export function matches(e, f) {
  if (f.tag && !e.tags.includes(f.tag)) return false;
  if (f.author && e.author_name !== f.author) return false;
  const at = Date.parse(e.event_time ?? e.created_at);
  if (f.from && at < Date.parse(f.from)) return false;
  if (f.to && at >= Date.parse(f.to)) return false;
  if (f.q) {
    const words = fold(e.text).split(/[^\p{L}\p{N}]+/u);
    for (const w of fold(f.q).split(/[^\p{L}\p{N}]+/u).filter(Boolean)) {
      if (!words.some((x) => x.startsWith(w))) return false;
    }
  }
  return true;
}

/**
 * @param {number} n bytes
 * @param {string} lang
 */
export function fmtSize(n, lang) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toLocaleString(lang, { maximumFractionDigits: 1 })} ${lang === 'fr' ? 'Mio' : 'MiB'}`;
  if (n >= 1 << 10) return `${Math.round(n / 1024)} ${lang === 'fr' ? 'Kio' : 'KiB'}`;
  return `${n} ${lang === 'fr' ? 'o' : 'B'}`;
}

/**
 * A time, short, in the page's language: hours and minutes, with the day
 * (withDate) and the year (withYear: dates that may be a year away).
 * @param {string|number} t  RFC 3339 or milliseconds since the epoch
 * @param {string} lang
 * @param {boolean} [withDate]
 * @param {boolean} [withYear]
 */
export function fmtTime(t, lang, withDate = true, withYear = false) {
  const d = new Date(t);
  if (!withDate) return d.toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit' });
  return d.toLocaleString(lang, { ...(withYear ? { year: 'numeric' } : {}), day: '2-digit', month: '2-digit', hour: '2-digit', minute: '2-digit' });
}

/**
 * @param {string} tag
 * @param {string} text
 * @param {string} [cls]
 */
export function el(tag, text = '', cls = '') {
  const e = document.createElement(tag);
  if (text) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

/**
 * Renders one entry: number, times, author, kind, tags, text, links to the
 * map, attachment, correction marks. Markup in the text stays text.
 * @param {Entry} e
 * @param {{i18n: I18n, tagLabel: (event: string, id: string) => string, seqOf: (id: string) => string,
 *   eventTitle: (slug: string) => string, showEvent: boolean}} ctx
 * @returns {HTMLElement}
 */
export function renderEntry(e, ctx) {
  const { i18n } = ctx;
  const li = el('li', '', 'mlog-entry');
  li.dataset.id = e.id;
  li.dataset.seq = String(e.seq);
  li.dataset.kind = e.kind;
  li.dataset.event = e.event;
  const head = el('p', '', 'head');
  head.append(el('span', i18n.t('log.n', { n: e.seq }), 'seq'), ' ');
  const t = el('time', fmtTime(e.created_at, i18n.lang), 'at');
  /** @type {HTMLTimeElement} */ (t).dateTime = e.created_at;
  head.append(t, ' ', el('span', e.author_name, 'who'));
  if (e.kind !== 'note') head.append(' ', el('span', i18n.t(`log.kind.${e.kind}`), 'kind'));
  if (ctx.showEvent) head.append(' ', el('span', ctx.eventTitle(e.event), 'ev'));
  li.append(head);
  const meta = [];
  if (e.event_time) meta.push(i18n.t('log.lateAt', { time: fmtTime(e.event_time, i18n.lang) }));
  if (e.chat) meta.push(i18n.t('log.chatFrom', { name: e.chat.name, time: fmtTime(e.chat.at, i18n.lang, false) }));
  if (meta.length) li.append(el('p', meta.join(' · '), 'meta'));
  if (e.tags.length) {
    const tags = el('p', '', 'tags');
    for (const id of e.tags) {
      const s = el('span', ctx.tagLabel(e.event, id), 'tag');
      s.dataset.tag = id;
      tags.append(s);
    }
    li.append(tags);
  }
  li.append(el('p', e.text, 'text'));
  const links = [];
  if (e.commune) links.push(el('span', e.commune, 'commune'));
  if (e.annotation) links.push(el('span', '⌖ ' + e.annotation, 'annotation'));
  if (e.attachment) {
    const b = el('button', i18n.t('log.attachment', { name: e.attachment.name, size: fmtSize(e.attachment.size, i18n.lang) }), 'link attachment');
    /** @type {HTMLButtonElement} */ (b).type = 'button';
    links.push(b);
  }
  if (e.corrects) links.push(el('span', i18n.t('log.corrects', { n: ctx.seqOf(e.corrects) }), 'corrects'));
  for (const id of e.corrected_by ?? []) links.push(el('span', i18n.t('log.correctedBy', { n: ctx.seqOf(id) }), 'corrected-by'));
  if (links.length) {
    const p = el('p', '', 'links');
    p.append(...links);
    li.append(p);
  }
  li.classList.toggle('corrected', (e.corrected_by ?? []).length > 0);
  return li;
}
