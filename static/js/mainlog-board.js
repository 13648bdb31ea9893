// The risk-situation board pinned on top of the main courante: severity on
// the four-colour scale, criteria, situation, stakes, means engaged, next
// point. Hosts edit it; every save is a new version, logged by the server.

import { byId, find } from './ui.js';
import { ApiError, fmtTime } from './mainlog-data.js';

/**
 * @typedef {import('./mainlog-data.js').Board} Board
 * @typedef {import('./mainlog-data.js').LogApi} LogApi
 * @typedef {import('./i18n.js').I18n} I18n
 */

/** The board's text fields: [key in Board, form field, i18n key]. */
const FIELDS = /** @type {const} */ ([
  ['criteria', 'mlog-b-criteria', 'log.board.criteria'],
  ['situation', 'mlog-b-situation', 'log.board.situation'],
  ['stakes', 'mlog-b-stakes', 'log.board.stakes'],
  ['means', 'mlog-b-means', 'log.board.means'],
  ['next_point', 'mlog-b-next', 'log.board.next'],
]);

export class BoardView {
  /**
   * @param {{i18n: I18n, api: LogApi, author: () => string}} opts
   */
  constructor(opts) {
    this.i18n = opts.i18n;
    this.api = opts.api;
    this.author = opts.author;
    this.root = byId('mlog-board');
    this.form = find(document, '#mlog-board-form', HTMLFormElement);
    /** @type {Board|null} */
    this.board = null;
    this.slug = '';
    this.host = false;
    byId('mlog-board-edit').addEventListener('click', () => this.edit());
    byId('mlog-board-cancel').addEventListener('click', () => { this.form.hidden = true; });
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.save();
    });
  }

  /**
   * @param {string} slug
   * @param {Board|undefined} b
   * @param {boolean} host
   */
  show(slug, b, host) {
    if (slug !== this.slug) this.form.hidden = true;
    this.slug = slug;
    this.board = b ?? null;
    this.host = host;
    this.render();
  }

  render() {
    const b = this.board;
    const sev = b?.severity ?? '';
    this.root.dataset.severity = sev;
    this.root.dataset.version = String(b?.version ?? 0);
    byId('mlog-sev').textContent = this.i18n.t(`log.sev.${sev}`);
    byId('mlog-board-meta').textContent = b && b.version > 0
      ? this.i18n.t('log.board.meta', { v: b.version, name: b.author_name, time: fmtTime(b.at, this.i18n.lang) }) : this.i18n.t('log.board.none');
    const dl = byId('mlog-board-fields');
    dl.replaceChildren();
    for (const [key, , label] of FIELDS) {
      const v = b?.[key] ?? '';
      if (!v) continue;
      const div = document.createElement('div');
      const dt = document.createElement('dt');
      dt.textContent = this.i18n.t(label);
      const dd = document.createElement('dd');
      dd.textContent = v;
      dd.dataset.field = key;
      div.append(dt, dd);
      dl.append(div);
    }
    byId('mlog-board-edit').hidden = !this.host;
  }

  /** @private */
  edit() {
    const b = this.board;
    for (const [key, id] of FIELDS) {
      const f = byId(id);
      if (f instanceof HTMLTextAreaElement || f instanceof HTMLInputElement) f.value = b?.[key] ?? '';
    }
    for (const r of this.form.querySelectorAll('input[name="severity"]')) {
      if (r instanceof HTMLInputElement) r.checked = r.value === (b?.severity || 'vert');
    }
    byId('mlog-board-msg').textContent = '';
    this.form.hidden = false;
  }

  /** @private */
  async save() {
    const msg = byId('mlog-board-msg');
    const sev = this.form.querySelector('input[name="severity"]:checked');
    /** @type {Record<string, any>} */
    const body = { version: this.board?.version ?? 0, severity: sev instanceof HTMLInputElement ? sev.value : '', author: this.author() };
    for (const [key, id] of FIELDS) {
      const f = byId(id);
      if (f instanceof HTMLTextAreaElement || f instanceof HTMLInputElement) body[key] = f.value;
    }
    const button = find(this.form, 'button[type="submit"]', HTMLButtonElement);
    button.disabled = true;
    try {
      const res = await this.api.send('PUT', `/events/${encodeURIComponent(this.slug)}/board`, body);
      this.board = res.board;
      this.form.hidden = true;
      this.render();
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        // Someone saved first: show theirs; the form keeps what was typed.
        try {
          this.board = await this.api.json(`/events/${encodeURIComponent(this.slug)}/board`);
          this.render();
        } catch {
          // the live feed will bring it
        }
        msg.textContent = this.i18n.t('log.board.conflict');
      } else {
        msg.textContent = err instanceof ApiError ? err.message : this.i18n.t('log.offline');
      }
    } finally {
      button.disabled = false;
    }
  }

  /**
   * A version arrived on the live feed.
   * @param {Board} b
   */
  update(b) {
    if (b.event !== this.slug || (this.board && this.board.version >= b.version)) return;
    this.board = b;
    this.render();
  }
}
