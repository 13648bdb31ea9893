// The room's "Invités" panel, for those who run the room: create a guest
// link (mandatory validity, optional maximum of entries, watch only,
// waiting room), show its URL once with a copy button, list the room's
// links and revoke one (its guests are disconnected at once). Labels and
// names come from people: textContent only.

import { apiJSON, ApiError, copyText, failure } from './api.js';
import { byId, find } from './ui.js';
import { fmtTime } from './mainlog-data.js';
import { twoStepButton } from './confirm.js';

/**
 * @typedef {import('./i18n.js').I18n} I18n
 * @typedef {import('./api.js').Auth} Auth
 *
 * @typedef {object} GuestLink
 * @property {string|number} id
 * @property {string} label
 * @property {string} created_at
 * @property {string} expires_at
 * @property {string|null} [revoked_at]
 * @property {number} max_uses   at least 1 for a guest link (0 would be no limit)
 * @property {number} uses
 * @property {boolean} watch_only
 * @property {boolean} lobby
 * @property {string} [created_by]
 * @property {string} state  the server's view: active, expired, used_up, revoked
 */

export class GuestLinks {
  /**
   * @param {{i18n: I18n, auth: Auth, room: string}} opts
   */
  constructor(opts) {
    this.i18n = opts.i18n;
    this.auth = opts.auth;
    this.room = opts.room;
    /** @type {string|null} the room's event; null until known */
    this.slug = null;
    /** @type {GuestLink[]} */
    this.links = [];
    this.loading = false;
    this.form = find(document, '#guest-form', HTMLFormElement);
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.create();
    });
    byId('guest-refresh').addEventListener('click', () => void this.load());
    byId('guest-copy').addEventListener('click', () => void this.copy());
    this.i18n.onChange(() => this.render());
  }

  /** The panel was opened: fetch the list afresh. */
  open() {
    void this.load();
  }

  /**
   * The room's event: the one whose room this is, else the caller's home.
   * @private
   * @returns {Promise<string>}
   */
  async event() {
    if (this.slug !== null) return this.slug;
    /** @type {{home?: string, events?: Array<{slug: string, room?: string}>}} */
    const r = await apiJSON(this.auth, 'GET', '/api/v1/events');
    const events = r?.events ?? [];
    const mine = events.find((e) => e.room === this.room) ?? events.find((e) => e.slug === this.room);
    this.slug = mine?.slug ?? r?.home ?? '';
    return this.slug;
  }

  /** @private */
  base() {
    return `/api/v1/events/${encodeURIComponent(this.slug ?? '')}/guest-links`;
  }

  /**
   * @private
   * @param {string} [note]  shown once the list is in (the outcome of an action)
   */
  async load(note = '') {
    if (this.loading) return;
    this.loading = true;
    const msg = byId('guest-list-msg');
    msg.textContent = this.i18n.t('common.loading');
    try {
      if (!(await this.event())) {
        msg.textContent = this.i18n.t('guests.noEvent');
        this.form.hidden = true;
        return;
      }
      const list = await apiJSON(this.auth, 'GET', this.base());
      this.links = Array.isArray(list) ? list : [];
      msg.textContent = note;
      this.render();
    } catch (err) {
      msg.textContent = this.why(err);
    } finally {
      this.loading = false;
    }
  }

  /** @private */
  async create() {
    const msg = byId('guest-msg');
    const picked = this.form.querySelector('input[name="guest-duration"]:checked');
    if (!(picked instanceof HTMLInputElement)) {
      msg.textContent = this.i18n.t('guests.needDuration');
      find(this.form, 'input[name="guest-duration"]', HTMLInputElement).focus();
      return;
    }
    const max = find(document, '#guest-max', HTMLInputElement);
    if (!max.checkValidity()) {
      max.reportValidity();
      return;
    }
    const body = {
      label: find(document, '#guest-label', HTMLInputElement).value.trim(),
      expires_in_minutes: Number(picked.value),
      max_uses: Number(max.value),
      watch_only: find(document, '#guest-watch', HTMLInputElement).checked,
      lobby: find(document, '#guest-lobby', HTMLInputElement).checked,
    };
    const btn = find(document, '#guest-create', HTMLButtonElement);
    btn.disabled = true;
    msg.textContent = this.i18n.t('guests.creating');
    try {
      if (!(await this.event())) throw new ApiError(404, 'no_event', this.i18n.t('guests.noEvent'));
      /** @type {{url: string, watch_only?: boolean}} */
      const made = await apiJSON(this.auth, 'POST', this.base(), body);
      msg.textContent = '';
      this.showResult(made);
      this.form.reset(); // the waiting room is checked again by default
      await this.load();
    } catch (err) {
      msg.textContent = this.why(err);
    } finally {
      btn.disabled = false;
    }
  }

  /**
   * Shows the new link once: the server keeps only its hash. A watch-only
   * link says so in its fragment (w=1), so that the guest's page does not
   * even ask for the camera before the server confirms it.
   * @private
   * @param {{url: string, watch_only?: boolean}} made
   */
  showResult(made) {
    let url = new URL(made.url, location.origin).href; // the server always gives it
    if (made.watch_only && url.includes('#t=') && !/[#&]w=1(&|$)/.test(url)) url += '&w=1';
    find(document, '#guest-url', HTMLInputElement).value = url;
    byId('guest-copy-msg').textContent = '';
    byId('guest-result').hidden = false;
  }

  /** @private */
  async copy() {
    const input = find(document, '#guest-url', HTMLInputElement);
    const ok = await copyText(input.value, input);
    byId('guest-copy-msg').textContent = this.i18n.t(ok ? 'common.copied' : 'common.copyManual');
  }

  /** @private */
  render() {
    const list = byId('guest-list');
    const items = this.links.map((l) => this.item(l)); // newest first, as the server lists them
    list.replaceChildren(...items);
    byId('guest-empty').hidden = items.length > 0;
  }

  /**
   * @private
   * @param {GuestLink} l
   */
  item(l) {
    const { i18n } = this;
    const state = l.state; // the server's, as of its answer
    const li = document.createElement('li');
    li.className = 'gl-item';
    li.dataset.id = String(l.id);
    li.dataset.state = state;
    const head = document.createElement('p');
    head.className = 'gl-head';
    const label = document.createElement('strong');
    label.textContent = l.label || '—';
    const badge = document.createElement('span');
    badge.className = 'gl-state';
    badge.textContent = i18n.t(`guests.state.${state}`);
    head.append(label, ' ', badge);
    const meta = document.createElement('p');
    meta.className = 'gl-meta';
    /** @type {string[]} */
    const parts = [l.max_uses > 0 ? i18n.t('guests.uses', { uses: l.uses ?? 0, max: l.max_uses }) : i18n.t('guests.usesNoMax', { uses: l.uses ?? 0 })];
    if (l.expires_at) parts.push(i18n.t(state === 'expired' ? 'guests.expired' : 'guests.expires', { time: fmtTime(l.expires_at, i18n.lang) }));
    if (l.watch_only) parts.push(i18n.t('guests.flag.watch'));
    if (l.lobby) parts.push(i18n.t('guests.flag.lobby'));
    if (l.created_by) parts.push(i18n.t('guests.by', { name: String(l.created_by) }));
    meta.textContent = parts.join(' · ');
    li.append(head, meta);
    if (state !== 'revoked' && state !== 'expired') {
      li.append(twoStepButton({
        label: i18n.t('guests.revoke'),
        confirmLabel: i18n.t('guests.revokeConfirm'),
        cancelLabel: i18n.t('common.cancel'),
        className: 'gl-revoke',
        key: `guest-link:${l.id}`,
        onConfirm: () => this.revoke(l),
      }));
    }
    return li;
  }

  /**
   * @private
   * @param {GuestLink} l
   */
  async revoke(l) {
    let note = this.i18n.t('guests.revoked');
    try {
      await apiJSON(this.auth, 'DELETE', `${this.base()}/${encodeURIComponent(String(l.id))}`);
    } catch (err) {
      note = this.why(err);
    }
    await this.load(note);
  }

  /**
   * @private
   * @param {unknown} err
   */
  why(err) {
    if (err instanceof ApiError && err.status === 403) return this.i18n.t('toast.forbidden');
    return failure(this.i18n, err);
  }
}
