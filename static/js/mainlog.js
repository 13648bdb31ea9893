// The main courante panel of the room: the event (and its sub-events), the
// situation board pinned on top, the entries with filters and search, the
// new-entry form with corrections, and "→ main courante" on chat messages.
//
// Live updates ride on the room's WebSocket (topic "log"): a snapshot gives
// each event's latest entry number; entries then come numbered one by one.
// A number that skips asks for a resync; a snapshot whose numbers differ
// from ours reloads the list over HTTP. The list itself is read over HTTP.

import { byId, find } from './ui.js';
import { LogApi, ApiError, filterParams, matches, renderEntry, el } from './mainlog-data.js';
import { BoardView } from './mainlog-board.js';
import { isHostRole } from './protocol.js';

/**
 * @typedef {import('./mainlog-data.js').Entry} Entry
 * @typedef {import('./mainlog-data.js').LogEvent} LogEvent
 * @typedef {import('./mainlog-data.js').Board} Board
 * @typedef {import('./mainlog-data.js').Filters} Filters
 * @typedef {import('./protocol.js').Envelope} Envelope
 * @typedef {import('./protocol.js').Joined} Joined
 * @typedef {import('./i18n.js').I18n} I18n
 */

const PAGE = 100;
const MAX_FILE = 5 << 20;

/** @param {string} id */
const input = (id) => find(document, `#${id}`, HTMLInputElement);

export class MainLog {
  /**
   * @param {{i18n: I18n, auth: import('./api.js').Auth, send: (type: string, data: any) => string|null, name: () => string,
   *   annotations?: () => Array<{id: string, label?: string, kind?: string}>}} opts
   */
  constructor(opts) {
    this.i18n = opts.i18n;
    /** The map's annotations, to link an entry to one of them. */
    this.annotations = opts.annotations ?? (() => []);
    this.send = opts.send;
    this.name = opts.name;
    this.auth = opts.auth;
    this.api = new LogApi(opts.auth);
    this.root = byId('panel-log');
    this.list = byId('mlog-list');
    this.role = '';
    this.home = '';
    this.view = ''; // the event shown
    /** @type {Map<string, LogEvent>} */
    this.events = new Map();
    /** @type {Map<string, Board>} */
    this.boards = new Map();
    /** @type {Map<string, number>} latest entry number per event, from the live feed */
    this.seq = new Map();
    /** @type {Map<string, Entry>} the entries shown */
    this.entries = new Map();
    /** @type {Map<string, number>} entry ID → number, for correction marks */
    this.numbers = new Map();
    /** @type {Entry[]} the latest live entries, kept across a reload that may have read the list before them */
    this.recent = [];
    this.more = false;
    /** A list render waiting for the rest of a burst (see scheduleList). */
    this.listTimer = 0;
    this.subscribeId = '';
    /** @type {Filters} */
    this.filters = { q: '', tag: '', author: '', from: '', to: '', tree: false };
    this.correcting = '';
    this.key = ''; // idempotency key of the submission in progress (kept across a network failure)
    this.loading = 0;
    this.board = new BoardView({ i18n: this.i18n, api: this.api, author: () => this.name() });
    this.wire();
    this.i18n.onChange(() => this.renderAll());
  }

  /** Reads the events this link sees. */
  async start() {
    this.setStatus('connecting');
    try {
      const r = await this.api.events();
      this.role = r.role;
      this.home = r.home;
      for (const e of r.events) this.events.set(e.slug, e);
      this.view ||= r.home || r.events[0]?.slug || '';
      this.root.dataset.role = r.role;
      this.renderAll();
      await this.reload();
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        // A guest has no main courante: no tab for it.
        for (const id of ['ctl-log', 'tab-log']) byId(id).hidden = true;
        this.setStatus('off');
        return;
      }
      console.warn('main courante', err);
      this.setStatus('off');
    }
  }

  /**
   * Our socket joined (fresh or resumed): watch the log on it.
   * @param {Joined} j
   */
  joined(j) {
    if (j.role) this.role = j.role;
    this.subscribeId = this.send('subscribe', { topic: 'log' }) ?? '';
  }

  /** @param {import('./signal.js').SignalStatus} s */
  connection(s) {
    if (s === 'reconnecting' || s === 'closed') this.setStatus('reconnecting');
  }

  /**
   * @param {Envelope} env
   * @returns {boolean} whether the message was the log's
   */
  handle(env) {
    const d = env.data ?? {};
    switch (env.type) {
      case 'log-snapshot':
        this.snapshot(d);
        return true;
      case 'log-entry':
        this.entry(d);
        return true;
      case 'log-board':
        this.boards.set(d.event, d);
        if (d.event === this.view) this.board.update(d);
        return true;
      case 'log-event':
        this.events.set(d.slug, d);
        if (!this.seq.has(d.slug)) this.seq.set(d.slug, d.last_seq);
        this.renderEvents();
        this.renderTags();
        return true;
      case 'error':
        if (d.ref && d.ref === this.subscribeId) {
          this.setStatus('off');
          return true;
        }
    }
    return false;
  }

  // ---- live feed ---------------------------------------------------------

  /**
   * @private
   * @param {import('./mainlog-data.js').Snapshot} s
   */
  snapshot(s) {
    let stale = false;
    for (const e of s.events) {
      this.events.set(e.slug, e);
      if (this.seq.get(e.slug) !== e.last_seq) stale = true;
      this.seq.set(e.slug, e.last_seq);
    }
    for (const [slug, b] of Object.entries(s.boards)) this.boards.set(slug, b);
    this.setStatus('live');
    this.renderAll();
    // Missed entries (first snapshot, outage, gap): read the list again.
    if (stale) void this.reload();
  }

  /**
   * @private
   * @param {Entry} e
   */
  entry(e) {
    const last = this.seq.get(e.event) ?? 0;
    if (e.seq <= last) return; // already seen
    if (e.seq > last + 1) {
      this.send('resync', { topic: 'log' });
      return;
    }
    this.seq.set(e.event, e.seq);
    this.numbers.set(e.id, e.seq);
    this.recent.push(e);
    if (this.recent.length > 50) this.recent.shift();
    if (this.show(e)) this.scheduleList();
  }

  /**
   * Adds a live entry to the list if it belongs there.
   * @private
   * @param {Entry} e
   */
  show(e) {
    if (!this.inScope(e.event) || !matches(e, this.filters)) return false;
    this.entries.set(e.id, e);
    const old = e.corrects ? this.entries.get(e.corrects) : undefined;
    if (old && !(old.corrected_by ?? []).includes(e.id)) old.corrected_by = [...(old.corrected_by ?? []), e.id];
    return true;
  }

  /**
   * @private
   * @param {string} slug
   */
  inScope(slug) {
    if (slug === this.view) return true;
    if (!this.filters.tree) return false;
    for (let e = this.events.get(slug), i = 0; e && i < 64; e = this.events.get(e.parent), i++) {
      if (e.parent === this.view) return true;
    }
    return false;
  }

  // ---- the list ------------------------------------------------------------

  /** Reads the newest page of the list again. */
  async reload() {
    if (!this.view) return;
    const n = ++this.loading;
    try {
      const r = await this.api.list(this.view, this.filters, { desc: true, limit: PAGE });
      if (n !== this.loading) return; // a newer load won
      this.entries.clear();
      this.add(r.entries);
      // Entries that came live while the list was read may be missing from it.
      const oldest = r.entries.at(-1)?.created_at ?? '';
      for (const e of this.recent) if (!r.more || e.created_at >= oldest) this.show(e);
      this.more = r.more;
      this.renderList();
    } catch (err) {
      console.warn('main courante list', err);
    }
  }

  /** @private */
  async older() {
    const oldest = this.sorted().at(-1);
    if (!oldest) return;
    const r = await this.api.list(this.view, this.filters, { desc: true, limit: PAGE, before: oldest.id });
    this.add(r.entries);
    this.more = r.more;
    this.renderList();
  }

  /**
   * @private
   * @param {Entry[]} list
   */
  add(list) {
    for (const e of list) {
      this.entries.set(e.id, e);
      this.numbers.set(e.id, e.seq);
    }
  }

  /** Newest first. @private */
  sorted() {
    return [...this.entries.values()].sort((a, b) => (a.created_at === b.created_at ? (a.id < b.id ? 1 : -1) : a.created_at < b.created_at ? 1 : -1));
  }

  /** @private */
  renderList() {
    if (this.listTimer) {
      clearTimeout(this.listTimer);
      this.listTimer = 0;
    }
    const ctx = {
      i18n: this.i18n,
      tagLabel: (/** @type {string} */ ev, /** @type {string} */ id) => this.events.get(ev)?.tags.find((t) => t.id === id)?.label ?? id,
      seqOf: (/** @type {string} */ id) => String(this.numbers.get(id) ?? '?'),
      eventTitle: (/** @type {string} */ slug) => this.events.get(slug)?.title ?? slug,
      showEvent: this.filters.tree,
    };
    const items = this.sorted().map((e) => {
      const li = renderEntry(e, ctx);
      if (this.canWrite() && e.event === this.view) {
        const b = el('button', this.i18n.t('log.correct'), 'link correct');
        /** @type {HTMLButtonElement} */ (b).type = 'button';
        li.append(b);
      }
      return li;
    });
    this.list.replaceChildren(...items);
    this.list.dataset.count = String(items.length);
    byId('mlog-empty').hidden = items.length > 0;
    byId('mlog-more').hidden = !this.more;
    const authors = new Set([...this.entries.values()].map((e) => e.author_name));
    byId('mlog-authors').replaceChildren(...[...authors].sort().map((a) => { const o = document.createElement('option'); o.value = a; return o; }));
  }

  /**
   * Renders the list once for a burst of live entries. Each render redraws
   * the whole list: 75 entries arriving together were 75 redraws of a
   * growing list, which kept a page busy for seconds on a loaded machine.
   * @private
   */
  scheduleList() {
    if (this.listTimer) return;
    this.listTimer = window.setTimeout(() => {
      this.listTimer = 0;
      this.renderList();
    }, 30);
  }

  // ---- rendering -----------------------------------------------------------

  /** @private */
  renderAll() {
    this.renderEvents();
    this.renderTags();
    this.board.show(this.view, this.boards.get(this.view), this.isHost());
    this.renderList();
    byId('mlog-form-box').hidden = !this.canWrite();
    byId('mlog-readonly').hidden = this.canWrite() || !this.role;
    byId('mlog-host').hidden = !this.isHost();
  }

  /** @private */
  renderEvents() {
    const sel = find(document, '#mlog-event', HTMLSelectElement);
    const depth = (/** @type {LogEvent} */ e) => {
      let d = 0;
      for (let p = this.events.get(e.parent); p && d < 64; p = this.events.get(p.parent)) d++;
      return d;
    };
    /** @type {LogEvent[]} */
    const ordered = [];
    const visit = (/** @type {string} */ parent) => {
      for (const e of [...this.events.values()].filter((x) => x.parent === parent).sort((a, b) => (a.created_at < b.created_at ? -1 : 1))) {
        ordered.push(e);
        visit(e.slug);
      }
    };
    const roots = [...this.events.values()].filter((e) => !this.events.has(e.parent));
    for (const r of roots) {
      ordered.push(r);
      visit(r.slug);
    }
    sel.replaceChildren(...ordered.map((e) => {
      const o = document.createElement('option');
      o.value = e.slug;
      o.textContent = `${'— '.repeat(depth(e))}${e.title} (${this.i18n.t(`log.ek.${e.kind}`)})`;
      return o;
    }));
    sel.value = this.view;
    byId('panel-log').dataset.events = String(ordered.length);
  }

  /** @private */
  renderTags() {
    const tags = this.events.get(this.view)?.tags ?? [];
    const filter = find(document, '#mlog-f-tag', HTMLSelectElement);
    const all = document.createElement('option');
    all.value = '';
    all.textContent = this.i18n.t('log.tagAll');
    filter.replaceChildren(all, ...tags.map((t) => { const o = document.createElement('option'); o.value = t.id; o.textContent = t.label; return o; }));
    filter.value = this.filters.tag;
    const box = byId('mlog-tags');
    const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => /** @type {HTMLInputElement} */ (i).value));
    box.replaceChildren(...tags.filter((t) => !t.retired).map((t) => {
      const label = el('label', '', 'tag-choice');
      const cb = document.createElement('input');
      cb.type = 'checkbox';
      cb.value = t.id;
      cb.checked = checked.has(t.id);
      label.append(cb, t.label);
      return label;
    }));
  }

  /**
   * @private
   * @param {'connecting'|'live'|'reconnecting'|'off'} s
   */
  setStatus(s) {
    const live = byId('mlog-live');
    live.dataset.status = s;
    live.textContent = this.i18n.t(`log.live.${s}`);
    this.root.classList.toggle('stale', s !== 'live');
  }

  /** @private */
  fillAnnotations() {
    const sel = find(document, '#mlog-annotation', HTMLSelectElement);
    const keep = sel.value;
    while (sel.options.length > 1) sel.remove(1);
    for (const a of this.annotations()) {
      const o = document.createElement('option');
      o.value = a.id;
      o.textContent = a.label || `${a.kind ?? ''} ${a.id.slice(0, 6)}`; // textContent: labels are user text
      sel.add(o);
    }
    sel.value = [...sel.options].some((o) => o.value === keep) ? keep : '';
  }

  /** @private */
  canWrite() {
    return isHostRole(this.role) || this.role === 'participant';
  }

  /** @private */
  isHost() {
    return isHostRole(this.role);
  }

  // ---- actions -------------------------------------------------------------

  /** @private */
  wire() {
    find(document, '#mlog-event', HTMLSelectElement).addEventListener('change', (ev) => {
      this.view = /** @type {HTMLSelectElement} */ (ev.target).value;
      this.filters.tag = '';
      this.cancelCorrection();
      this.renderAll();
      void this.reload();
    });
    const filters = find(document, '#mlog-filters', HTMLFormElement);
    filters.addEventListener('submit', (ev) => { ev.preventDefault(); this.readFilters(); });
    filters.addEventListener('change', () => this.readFilters());
    filters.addEventListener('reset', () => setTimeout(() => this.readFilters(), 0));
    byId('mlog-more').addEventListener('click', () => void this.older());
    // The annotations change while the meeting goes on: the list is built
    // when the writer opens it.
    byId('mlog-annotation').addEventListener('focus', () => this.fillAnnotations());
    byId('mlog-annotation').addEventListener('pointerdown', () => this.fillAnnotations());
    byId('mlog-print').addEventListener('click', () => {
      const p = filterParams(this.filters);
      // A staff session needs no fragment: the printable view rides on the cookie.
      const hash = this.auth.token ? `#t=${encodeURIComponent(this.auth.token)}` : '';
      window.open(`/log/${encodeURIComponent(this.view)}?${p}${hash}`, '_blank', 'noopener');
    });
    byId('mlog-csv').addEventListener('click', () => {
      void this.api.download(`/events/${encodeURIComponent(this.view)}/log.csv?${filterParams(this.filters)}`, 'main-courante.csv')
        .catch((err) => this.say(err instanceof ApiError ? err.message : this.i18n.t('log.offline')));
    });
    find(document, '#mlog-form', HTMLFormElement).addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.submit();
    });
    // The key names this content: any change (text, file, tags, time,
    // commune, annotation) makes a new submission, which the server would
    // otherwise refuse as a reused key (422) if the first try got through.
    const form = find(document, '#mlog-form', HTMLFormElement);
    for (const t of ['input', 'change']) form.addEventListener(t, () => { this.key = ''; });
    byId('mlog-correct-cancel').addEventListener('click', () => this.cancelCorrection());
    this.list.addEventListener('click', (ev) => {
      const t = /** @type {HTMLElement} */ (ev.target);
      const li = t.closest('li.mlog-entry');
      if (!(li instanceof HTMLElement)) return;
      const e = this.entries.get(li.dataset.id ?? '');
      if (!e) return;
      if (t.closest('.correct')) this.startCorrection(e);
      if (t.closest('.attachment')) {
        void this.api.download(`/events/${encodeURIComponent(e.event)}/log/${encodeURIComponent(e.id)}/attachment`, e.attachment?.name ?? 'piece-jointe')
          .catch(() => this.say(this.i18n.t('log.offline')));
      }
    });
    // Chat messages are cloned from a template: label their button as they come.
    const chat = byId('chat-log');
    new MutationObserver(() => this.labelChat()).observe(chat, { childList: true });
    this.i18n.onChange(() => this.labelChat());
    chat.addEventListener('click', (ev) => {
      const b = /** @type {HTMLElement} */ (ev.target).closest('.to-log');
      if (b instanceof HTMLButtonElement) void this.promote(b);
    });
    find(document, '#mlog-sub-form', HTMLFormElement).addEventListener('submit', (ev) => { ev.preventDefault(); void this.createSub(); });
    byId('mlog-tags-edit').addEventListener('click', () => this.editTags());
    find(document, '#mlog-tags-form', HTMLFormElement).addEventListener('submit', (ev) => { ev.preventDefault(); void this.saveTags(); });
  }

  /** @private */
  labelChat() {
    for (const b of byId('chat-log').querySelectorAll('button.to-log')) {
      if (!(b instanceof HTMLElement)) continue;
      const state = b.dataset.state;
      b.textContent = this.i18n.t(state === 'done' ? 'log.toLogDone' : state === 'failed' ? 'log.toLogFailed' : 'log.toLog');
      b.hidden = !this.canWrite() || !this.home;
    }
  }

  /** @private */
  readFilters() {
    const iso = (/** @type {string} */ v) => (v ? new Date(v).toISOString() : '');
    this.filters = {
      q: input('mlog-f-q').value.trim(),
      tag: find(document, '#mlog-f-tag', HTMLSelectElement).value,
      author: input('mlog-f-author').value.trim(),
      from: iso(input('mlog-f-from').value),
      to: iso(input('mlog-f-to').value),
      tree: input('mlog-f-tree').checked,
    };
    void this.reload();
  }

  /**
   * @private
   * @param {Entry} e
   */
  startCorrection(e) {
    this.correcting = e.id;
    const box = byId('mlog-correcting');
    box.hidden = false;
    byId('mlog-correcting-text').textContent = this.i18n.t('log.correcting', { n: e.seq });
    const text = find(document, '#mlog-text', HTMLTextAreaElement);
    text.value = e.text;
    this.key = '';
    text.focus();
  }

  /** @private */
  cancelCorrection() {
    this.correcting = '';
    byId('mlog-correcting').hidden = true;
  }

  /**
   * @private
   * @param {string} text  already translated
   */
  say(text) {
    byId('mlog-msg').textContent = text;
  }

  /** Sends the form. On any failure the form keeps everything typed. @private */
  async submit() {
    const text = find(document, '#mlog-text', HTMLTextAreaElement);
    const file = input('mlog-file').files?.[0] ?? null;
    if (!text.value.trim()) return;
    if (file && file.size > MAX_FILE) {
      this.say(this.i18n.t('log.failed', { why: this.i18n.t('log.fileTooBig') }));
      return;
    }
    const when = input('mlog-when').value;
    this.key ||= crypto.randomUUID();
    /** @type {Record<string, any>} */
    const entry = {
      text: text.value, author: this.name(), key: this.key,
      tags: [...byId('mlog-tags').querySelectorAll('input:checked')].map((i) => /** @type {HTMLInputElement} */ (i).value),
    };
    if (when) entry.event_time = new Date(when).toISOString();
    if (input('mlog-commune').value.trim()) entry.commune = input('mlog-commune').value.trim();
    const ann = find(document, '#mlog-annotation', HTMLSelectElement).value;
    if (ann) entry.annotation = ann;
    if (this.correcting) entry.corrects = this.correcting;
    const send = find(document, '#mlog-send', HTMLButtonElement);
    send.disabled = true;
    this.say(this.i18n.t('log.sending'));
    try {
      const e = await this.api.write(this.view, entry, file);
      this.say(this.i18n.t('log.sent', { n: e.seq }));
      find(document, '#mlog-form', HTMLFormElement).reset();
      for (const cb of byId('mlog-tags').querySelectorAll('input')) /** @type {HTMLInputElement} */ (cb).checked = false;
      this.key = '';
      this.cancelCorrection();
    } catch (err) {
      // A refusal will not change on retry: a new submission gets a new key.
      if (err instanceof ApiError) this.key = '';
      this.say(this.i18n.t('log.failed', { why: err instanceof ApiError ? err.message : this.i18n.t('log.offline') }));
    } finally {
      send.disabled = false;
    }
  }

  /**
   * "→ main courante" on a chat message: the message, its author and time
   * become an entry of the room's event.
   * @private
   * @param {HTMLButtonElement} b
   */
  async promote(b) {
    const li = b.closest('li');
    if (!li || b.dataset.state === 'done' || !this.home) return;
    const time = li.querySelector('time');
    const body = {
      text: li.querySelector('.text')?.textContent ?? '', author: this.name(),
      chat: { name: li.querySelector('.who')?.textContent ?? '', at: time?.dateTime ?? new Date().toISOString() },
      key: b.dataset.key ||= crypto.randomUUID(),
    };
    b.disabled = true;
    try {
      await this.api.write(this.home, body, null);
      b.dataset.state = 'done';
      b.textContent = this.i18n.t('log.toLogDone');
    } catch (err) {
      b.disabled = false;
      b.dataset.state = 'failed';
      b.textContent = this.i18n.t('log.toLogFailed');
      b.title = err instanceof ApiError ? err.message : this.i18n.t('log.offline');
    }
  }

  /** @private */
  async createSub() {
    const title = input('mlog-sub-title');
    const kind = find(document, '#mlog-sub-kind', HTMLSelectElement);
    const out = byId('mlog-sub-out');
    try {
      const r = await this.api.send('POST', `/events/${encodeURIComponent(this.view)}/events`, { title: title.value, kind: kind.value, author: this.name() });
      this.events.set(r.event.slug, r.event);
      this.renderEvents();
      const p = el('p', this.i18n.t('log.sub.links', { title: r.event.title }));
      const links = [['log.sub.host', r.links.host], ['log.sub.participant', r.links.participant]].map(([k, url]) => {
        const l = el('label', this.i18n.t(k), 'sub-link');
        const i = document.createElement('input');
        i.readOnly = true;
        i.value = url;
        i.addEventListener('focus', () => i.select());
        l.append(i);
        return l;
      });
      out.replaceChildren(p, ...links);
      out.dataset.slug = r.event.slug;
      title.value = '';
    } catch (err) {
      out.replaceChildren(el('p', err instanceof ApiError ? err.message : this.i18n.t('log.offline'), 'error'));
    }
  }

  /** @private */
  editTags() {
    const form = find(document, '#mlog-tags-form', HTMLFormElement);
    form.hidden = !form.hidden;
    const tags = (this.events.get(this.view)?.tags ?? []).filter((t) => !t.retired);
    find(document, '#mlog-tags-list', HTMLTextAreaElement).value = tags.map((t) => t.label).join('\n');
  }

  /** @private */
  async saveTags() {
    const cur = this.events.get(this.view)?.tags ?? [];
    const labels = find(document, '#mlog-tags-list', HTMLTextAreaElement).value.split('\n').map((s) => s.trim()).filter(Boolean);
    const tags = labels.map((label) => ({ id: cur.find((t) => t.label === label)?.id ?? '', label }));
    const form = find(document, '#mlog-tags-form', HTMLFormElement);
    try {
      await this.api.send('PUT', `/events/${encodeURIComponent(this.view)}/tags`, { tags, author: this.name() });
      form.hidden = true;
    } catch (err) {
      byId('mlog-tags-msg').textContent = err instanceof ApiError ? err.message : this.i18n.t('log.offline');
    }
  }
}
