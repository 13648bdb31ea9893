// The main courante's printable view (/log/{slug}?filters#t=TOKEN): every
// entry of the selection, oldest first, on numbered sheets of a fixed number
// of entries with the event, the selection and the print time on each, the
// situation board on the first. On screen one sheet at a time; printed, all.

import { I18n } from '../i18n.js';
import { byId, cloneTemplate, find } from '../ui.js';
import { LogApi, ApiError, el, fmtSize } from '../mainlog-data.js';
import { getSession, sessionAuth } from '../api.js';

/**
 * @typedef {import('../mainlog-data.js').Entry} Entry
 * @typedef {import('../mainlog-data.js').LogEvent} LogEvent
 * @typedef {import('../mainlog-data.js').Board} Board
 */

const SHEET = 40;   // entries per sheet
const PAGE = 5000;  // entries per request

/**
 * The token comes in the fragment (never sent to the server), is kept for
 * reloads and removed from the address bar.
 * @param {string} slug
 */
function readToken(slug) {
  const key = `crisisroom.logtoken.${slug}`;
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('t');
  try {
    if (fromHash) {
      sessionStorage.setItem(key, fromHash);
      history.replaceState(null, '', location.pathname + location.search);
      return fromHash;
    }
    return sessionStorage.getItem(key);
  } catch {
    return fromHash;
  }
}

class PrintView {
  /**
   * @param {I18n} i18n
   * @param {LogApi} api
   * @param {string} slug
   */
  constructor(i18n, api, slug) {
    this.i18n = i18n;
    this.api = api;
    this.slug = slug;
    this.params = new URLSearchParams(location.search);
    /** @type {Map<string, LogEvent>} */
    this.events = new Map();
    /** @type {HTMLElement[]} */
    this.sheets = [];
    this.current = 0;
    /** @type {Map<string, number>} */
    this.numbers = new Map();
  }

  async load() {
    const status = byId('status');
    const evs = await this.api.events();
    for (const e of evs.events) this.events.set(e.slug, e);
    /** @type {{board: Board}} */
    const { board } = await this.api.json(`/events/${encodeURIComponent(this.slug)}`);
    /** @type {Entry[]} */
    const all = [];
    let after = '';
    for (;;) {
      const p = new URLSearchParams(this.params);
      p.set('limit', String(PAGE));
      if (after) p.set('after', after);
      const r = await this.api.page(`/events/${encodeURIComponent(this.slug)}/log?${p}`);
      all.push(...r.entries);
      status.textContent = this.i18n.t('log.print.loading', { n: all.length });
      if (!r.more || r.entries.length === 0) break;
      after = /** @type {Entry} */ (r.entries.at(-1)).id;
    }
    for (const e of all) this.numbers.set(e.id, e.seq);
    this.render(all, board);
    status.textContent = this.i18n.t('log.print.count', { n: all.length });
    document.body.dataset.entries = String(all.length);
    document.body.dataset.state = 'ready';
  }

  /**
   * @param {Entry[]} all
   * @param {Board} board
   */
  render(all, board) {
    const ev = this.events.get(this.slug);
    const title = this.i18n.t('log.print.title', { title: ev?.title ?? this.slug });
    document.title = title;
    const printed = this.i18n.t('log.print.printed', { time: new Date().toLocaleString(this.i18n.lang) });
    const selection = this.i18n.t('log.print.selection', { f: this.selection() });
    const n = Math.max(1, Math.ceil(all.length / SHEET));
    const root = byId('sheets');
    for (let k = 0; k < n; k++) {
      const sheet = cloneTemplate('tpl-sheet');
      this.i18n.apply(sheet);
      find(sheet, '.title', HTMLElement).textContent = title;
      find(sheet, '.selection', HTMLElement).textContent = selection;
      find(sheet, '.printed', HTMLElement).textContent = printed;
      find(sheet, '.page', HTMLElement).textContent = this.i18n.t('log.print.page', { k: k + 1, n });
      sheet.dataset.sheet = String(k + 1);
      if (k === 0) sheet.querySelector('table')?.before(this.boardBox(board));
      const body = find(sheet, 'tbody', HTMLTableSectionElement);
      for (const e of all.slice(k * SHEET, (k + 1) * SHEET)) body.append(this.row(e));
      root.append(sheet);
      this.sheets.push(sheet);
    }
    document.body.dataset.sheets = String(n);
    this.go(0);
  }

  /** The filters, in words. */
  selection() {
    const parts = [];
    const p = this.params;
    if (p.get('q')) parts.push(`« ${p.get('q')} »`);
    for (const t of p.getAll('tag')) parts.push(this.events.get(this.slug)?.tags.find((x) => x.id === t)?.label ?? t);
    if (p.get('author')) parts.push(/** @type {string} */ (p.get('author')));
    if (p.get('from')) parts.push(`≥ ${new Date(/** @type {string} */ (p.get('from'))).toLocaleString(this.i18n.lang)}`);
    if (p.get('to')) parts.push(`< ${new Date(/** @type {string} */ (p.get('to'))).toLocaleString(this.i18n.lang)}`);
    if (p.get('tree') === '1') parts.push(this.i18n.t('log.tree'));
    return parts.length ? parts.join(', ') : this.i18n.t('log.print.all');
  }

  /** @param {Board} b */
  boardBox(b) {
    const box = el('div', '', 'board');
    box.dataset.severity = b.severity;
    const t = this.i18n;
    box.append(el('p', `${t.t('log.board.title')} — ${t.t('log.board.severity')} : ${t.t(`log.sev.${b.severity}`)}` +
      (b.version ? ` (${t.t('log.board.meta', { v: b.version, name: b.author_name, time: new Date(b.at).toLocaleString(t.lang) })})` : '')));
    for (const [k, key] of /** @type {const} */ ([['criteria', 'log.board.criteria'], ['situation', 'log.board.situation'],
      ['stakes', 'log.board.stakes'], ['means', 'log.board.means'], ['next_point', 'log.board.next']])) {
      if (b[k]) box.append(el('p', `${t.t(key)} : ${b[k]}`));
    }
    return box;
  }

  /** @param {Entry} e */
  row(e) {
    const t = this.i18n;
    const tr = document.createElement('tr');
    tr.dataset.kind = e.kind;
    tr.dataset.id = e.id;
    tr.classList.toggle('corrected', (e.corrected_by ?? []).length > 0);
    const at = el('td');
    at.append(el('p', new Date(e.created_at).toLocaleString(t.lang)));
    if (e.event_time) at.append(el('p', t.t('log.lateAt', { time: new Date(e.event_time).toLocaleString(t.lang) }), 'meta'));
    const who = el('td');
    who.append(el('p', e.author_name));
    if (e.kind !== 'note') who.append(el('p', t.t(`log.kind.${e.kind}`), 'meta'));
    if (e.chat) who.append(el('p', t.t('log.chatFrom', { name: e.chat.name, time: new Date(e.chat.at).toLocaleTimeString(t.lang) }), 'meta'));
    const text = el('td');
    const ev = this.events.get(e.event);
    if (e.event !== this.slug) text.append(el('p', ev?.title ?? e.event, 'meta'));
    if (e.tags.length) text.append(el('p', e.tags.map((id) => ev?.tags.find((x) => x.id === id)?.label ?? id).join(' · '), 'tags'));
    text.append(el('p', e.text, 'text'));
    const links = [];
    if (e.commune) links.push(e.commune);
    if (e.attachment) links.push(t.t('log.attachment', { name: e.attachment.name, size: fmtSize(e.attachment.size, t.lang) }));
    if (e.corrects) links.push(t.t('log.corrects', { n: this.numbers.get(e.corrects) ?? '?' }));
    for (const id of e.corrected_by ?? []) links.push(t.t('log.correctedBy', { n: this.numbers.get(id) ?? '?' }));
    if (links.length) text.append(el('p', links.join(' · '), 'links'));
    tr.append(el('td', String(e.seq)), at, who, text);
    return tr;
  }

  /** @param {number} k */
  go(k) {
    this.current = Math.max(0, Math.min(this.sheets.length - 1, k));
    this.sheets.forEach((s, i) => s.classList.toggle('current', i === this.current));
    byId('pos').textContent = this.i18n.t('log.print.page', { k: this.current + 1, n: this.sheets.length });
    find(document, '#prev', HTMLButtonElement).disabled = this.current === 0;
    find(document, '#next', HTMLButtonElement).disabled = this.current >= this.sheets.length - 1;
    document.body.dataset.current = String(this.current + 1);
  }
}

async function main() {
  const i18n = new I18n();
  i18n.apply(document);
  const m = /^\/log\/([^/]+)\/?$/.exec(location.pathname);
  const slug = m ? decodeURIComponent(m[1]) : '';
  const token = slug ? readToken(slug) : null;
  const status = byId('status');
  /** @type {import('../api.js').Auth|null} */
  let auth = token ? { token, csrf: '' } : null;
  if (!auth && slug) {
    // Opened from the staff home or a staff session's room: the cookie.
    const session = await getSession().catch(() => null);
    if (session) auth = sessionAuth(session.csrf);
  }
  if (!auth) {
    status.textContent = i18n.t('log.print.nolink');
    document.body.dataset.state = 'nolink';
    return;
  }
  const view = new PrintView(i18n, new LogApi(auth), slug);
  byId('prev').addEventListener('click', () => view.go(view.current - 1));
  byId('next').addEventListener('click', () => view.go(view.current + 1));
  byId('print').addEventListener('click', () => window.print());
  // Printing shows every sheet, whichever way it is started.
  window.addEventListener('beforeprint', () => document.body.classList.add('all'));
  window.addEventListener('afterprint', () => document.body.classList.remove('all'));
  try {
    await view.load();
  } catch (err) {
    status.textContent = i18n.t('log.print.failed', { why: err instanceof ApiError ? err.message : String(err) });
    document.body.dataset.state = 'failed';
  }
}

void main();
