// The commune's own history: what the server holds, plus what is still in
// the outbox (waiting to be sent, or refused and waiting for a fix). Each
// row says where the declaration stands: "en attente d'envoi", "reçu" or
// "refusé". A received declaration can be corrected (an amendment with a
// mandatory reason; the server keeps the audit trail).

import { api, apiError, el, find, frenchDay, placeLabel, byId } from './common.js';
import { PlacePicker, Stepper, showErrors, clearErrors } from './form.js';

/**
 * @typedef {import('./common.js').Me} Me
 * @typedef {import('./common.js').Declaration} Declaration
 * @typedef {import('./common.js').FieldError} FieldError
 * @typedef {import('./outbox.js').OutboxItem} OutboxItem
 * @typedef {import('./outbox.js').Status} Status
 *
 * @typedef {object} Row
 * @property {string} key
 * @property {Status} status
 * @property {string} date
 * @property {string} place
 * @property {number} count
 * @property {string} note
 * @property {Declaration} [decl]  set once the server holds it
 * @property {OutboxItem} [item]   set while the outbox holds it
 */

/** @type {Record<Status, string>} */
export const STATUS_TEXT = { pending: 'en attente d’envoi', sent: 'reçu', error: 'refusé' };

/**
 * Merges the server's list and the outbox into rows, newest day first,
 * unsent ones on top.
 * @param {Declaration[]} server
 * @param {OutboxItem[]} outbox
 * @returns {Row[]}
 */
export function mergeRows(server, outbox) {
  const onServer = new Set(server.map((d) => d.idempotency_key));
  /** @type {Row[]} */
  const rows = server.map((d) => ({ key: d.idempotency_key, status: 'sent', date: d.date, place: d.place, count: d.count, note: d.note, decl: d }));
  for (const it of outbox) {
    if (onServer.has(it.key)) continue;
    rows.push({ key: it.key, status: it.status, date: it.input.date, place: it.input.place, count: it.input.count, note: it.input.note, item: it });
  }
  const rank = (/** @type {Row} */ r) => (r.status === 'sent' ? 1 : 0);
  const created = (/** @type {Row} */ r) => r.decl?.created_at ?? new Date(r.item?.createdAt ?? 0).toISOString();
  return rows.sort((a, b) => rank(a) - rank(b) || b.date.localeCompare(a.date) || created(b).localeCompare(created(a)));
}

export class HistoryView {
  /**
   * @param {object} o
   * @param {HTMLElement} o.list
   * @param {HTMLElement} o.empty
   * @param {Me} o.me
   * @param {string} o.token
   * @param {(item: OutboxItem) => void} o.onFix
   * @param {(item: OutboxItem) => void} o.onDiscard
   * @param {() => void} o.onRetry
   * @param {(d: Declaration) => void} o.onAmended
   */
  constructor(o) {
    this.o = o;
    /** @type {{ id: string, node: HTMLElement }|null} the correction editor open, kept across renders */
    this.editor = null;
  }

  /** @param {Row[]} rows */
  render(rows) {
    const { list, empty } = this.o;
    list.replaceChildren(...rows.map((r) => this.row(r)));
    empty.hidden = rows.length > 0;
    if (this.editor) {
      const host = list.querySelector(`li[data-id="${CSS.escape(this.editor.id)}"]`);
      if (host) host.append(this.editor.node);
      else this.editor = null;
    }
  }

  /** @param {Row} r */
  row(r) {
    const li = el('li', 'row');
    li.dataset.key = r.key;
    li.dataset.status = r.status;
    if (r.decl) li.dataset.id = r.decl.id;
    const main = el('div', 'row-main');
    const count = el('span', 'row-count', String(r.count));
    const what = el('span', 'row-what');
    what.append(el('span', 'row-place', placeLabel(r.place)), el('span', 'row-date', frenchDay(r.date)));
    const badge = el('span', `badge badge-${r.status}`, STATUS_TEXT[r.status]);
    badge.setAttribute('role', 'status');
    main.append(count, what, badge);
    li.append(main);
    if (r.decl && r.decl.revision > 1) {
      li.append(el('p', 'row-tag', r.decl.count === 0 ? `annulée (correction n° ${r.decl.revision - 1})` : `corrigée (${r.decl.revision - 1} correction${r.decl.revision > 2 ? 's' : ''})`));
    }
    if (r.note) li.append(el('p', 'row-note', r.note));
    if (r.item?.status === 'error') {
      const msgs = [r.item.error ?? '', ...(r.item.fieldErrors ?? []).map((e) => e.message)].filter(Boolean);
      li.append(el('p', 'row-err', msgs.join(' ')));
    }
    const actions = el('div', 'row-actions');
    if (r.decl) {
      const fix = el('button', 'act act-fix', 'corriger');
      fix.type = 'button';
      fix.addEventListener('click', () => this.openEditor(li, /** @type {Declaration} */ (r.decl)));
      actions.append(fix);
    } else if (r.item) {
      const it = r.item;
      if (it.status === 'error') {
        const edit = el('button', 'act act-edit', 'modifier');
        edit.type = 'button';
        edit.addEventListener('click', () => this.o.onFix(it));
        actions.append(edit);
      } else if (it.status === 'pending') {
        const retry = el('button', 'act act-retry', 'réessayer');
        retry.type = 'button';
        retry.addEventListener('click', () => this.o.onRetry());
        actions.append(retry);
      }
      if (it.status !== 'sent') {
        const discard = el('button', 'act act-discard', 'supprimer');
        discard.type = 'button';
        discard.addEventListener('click', () => {
          if (confirm('Supprimer cette déclaration non envoyée ? Elle ne sera jamais transmise.')) this.o.onDiscard(it);
        });
        actions.append(discard);
      }
    }
    if (actions.childElementCount) li.append(actions);
    return li;
  }

  /**
   * @param {HTMLElement} li
   * @param {Declaration} d
   */
  openEditor(li, d) {
    if (this.editor?.id === d.id) {
      this.closeEditor();
      return;
    }
    this.closeEditor();
    const tpl = byId('tpl-amend');
    if (!(tpl instanceof HTMLTemplateElement)) throw new Error('#tpl-amend is not a template');
    const node = /** @type {HTMLFormElement} */ (tpl.content.firstElementChild?.cloneNode(true));
    const ed = new AmendEditor(node, d, this.o.me, this.o.token, {
      close: () => this.closeEditor(),
      saved: (nd) => {
        this.closeEditor();
        this.o.onAmended(nd);
      },
    });
    this.editor = { id: d.id, node };
    li.append(node);
    ed.focus();
  }

  closeEditor() {
    this.editor?.node.remove();
    this.editor = null;
  }
}

/** The inline correction form of one received declaration. */
class AmendEditor {
  /**
   * @param {HTMLFormElement} form
   * @param {Declaration} d
   * @param {Me} me
   * @param {string} token
   * @param {{ close: () => void, saved: (d: Declaration) => void }} cb
   */
  constructor(form, d, me, token, cb) {
    this.form = form;
    this.d = d;
    this.token = token;
    this.cb = cb;
    this.date = find(form, 'input[name=date]', HTMLInputElement);
    this.reason = find(form, 'textarea[name=reason]', HTMLTextAreaElement);
    this.save = find(form, 'button[type=submit]', HTMLButtonElement);
    this.places = new PlacePicker(find(form, '.places', HTMLElement), () => {});
    // 0 is allowed here: a declaration made in error is cancelled.
    this.count = new Stepper(find(form, '.stepper', HTMLElement), 0, me.max_count, () => {});
    this.date.value = d.date;
    this.date.max = me.today;
    if (me.event_start) this.date.min = me.event_start;
    this.places.set(d.place);
    this.count.set(d.count);
    // Unique ids per editor for the labels.
    for (const n of form.querySelectorAll('[data-id-suffix]')) {
      const e = /** @type {HTMLElement} */ (n);
      if (e.id) e.id = `${e.id}-${d.id}`;
      if (e.getAttribute('for')) e.setAttribute('for', `${e.getAttribute('for')}-${d.id}`);
    }
    find(form, '.amend-cancel', HTMLButtonElement).addEventListener('click', () => cb.close());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submit();
    });
  }

  focus() {
    this.form.scrollIntoView({ block: 'nearest' });
    this.count.input.focus();
  }

  /** Only what changed is sent; the server refuses an amendment that changes nothing. */
  body() {
    /** @type {{date?: string, place?: string, count?: number, reason: string}} */
    const b = { reason: this.reason.value.trim() };
    if (this.date.value !== this.d.date) b.date = this.date.value;
    if (this.places.value !== this.d.place) b.place = this.places.value;
    if (this.count.value !== this.d.count) b.count = this.count.value;
    return b;
  }

  async submit() {
    clearErrors(this.form);
    if (!Number.isFinite(this.count.value)) {
      showErrors(this.form, [{ field: 'count', code: 'client', message: 'Indiquez un nombre.', message_en: 'count: a number' }]);
      return;
    }
    this.save.disabled = true;
    try {
      const r = await api(this.token, 'POST', `/declarations/${encodeURIComponent(this.d.id)}/amendments`, this.body());
      if (r.status === 200) {
        this.cb.saved(/** @type {Declaration} */ (r.body));
        return;
      }
      if (r.status === 0) {
        showErrors(this.form, [{ field: '_', code: 'network', message: 'Pas de réseau : la correction n’a pas été envoyée. Réessayez quand la connexion revient.', message_en: 'offline' }]);
        return;
      }
      const e = apiError(r);
      showErrors(this.form, e.errors?.length ? e.errors : [{ field: '_', code: e.error, message: e.message, message_en: e.message }]);
    } finally {
      this.save.disabled = false;
    }
  }
}
