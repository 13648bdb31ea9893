// The communes' declaration links, for the prefecture's operators and
// administrators: look a commune up by its INSEE code, see its links and
// their state, mint a new one (shown once, to send to the mayor) and
// revoke one that leaked — the server refuses it from the next request.
// Every value reaches the page through textContent only.

import { byId, find } from '../ui.js';
import { fmtTime } from '../mainlog-data.js';
import { apiJSON, copyText, failure } from '../api.js';
import { twoStepButton } from '../confirm.js';

/**
 * @typedef {import('../i18n.js').I18n} I18n
 * @typedef {import('../api.js').Auth} Auth
 * @typedef {{id: string, label: string, created_at: string, expires_at: string,
 *   revoked_at: string|null, state: string}} CommuneLinkRow
 */

export class CommuneLinks {
  /** @param {{i18n: I18n, auth: Auth}} opts */
  constructor(opts) {
    this.i18n = opts.i18n;
    this.auth = opts.auth;
    /** The commune shown ('' before the first lookup). */
    this.code = '';
    /** @type {CommuneLinkRow[]} */
    this.links = [];
    const form = find(document, '#commune-form', HTMLFormElement);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!form.checkValidity()) {
        form.reportValidity();
        return;
      }
      this.code = find(document, '#commune-code', HTMLInputElement).value.trim();
      byId('commune-result').hidden = true;
      void this.load();
    });
    byId('commune-new').addEventListener('click', () => void this.mint());
    byId('commune-copy').addEventListener('click', () => void this.copy());
    this.i18n.onChange(() => this.render());
  }

  /** Logged out: forget what was shown. */
  stop() {
    this.code = '';
    this.links = [];
    byId('commune-result').hidden = true;
    find(document, '#commune-url', HTMLInputElement).value = '';
    this.say('');
    this.render();
  }

  /**
   * @private
   * @param {string} text
   */
  say(text) {
    byId('commune-msg').textContent = text;
  }

  /** @private */
  path() {
    return `/api/v1/communes/${encodeURIComponent(this.code)}/links`;
  }

  /** @private */
  async load() {
    this.say(this.i18n.t('common.loading'));
    try {
      const list = await apiJSON(this.auth, 'GET', this.path());
      this.links = Array.isArray(list) ? list : [];
      this.say('');
    } catch (err) {
      this.links = [];
      this.say(failure(this.i18n, err));
    }
    this.render();
  }

  /** @private */
  async mint() {
    if (!this.code) return;
    try {
      /** @type {{url?: string}} */
      const made = await apiJSON(this.auth, 'POST', this.path(), {});
      find(document, '#commune-url', HTMLInputElement).value = made?.url ?? '';
      byId('commune-copy-msg').textContent = '';
      byId('commune-result').hidden = false;
      await this.load();
    } catch (err) {
      this.say(failure(this.i18n, err));
    }
  }

  /** @private */
  async copy() {
    const input = find(document, '#commune-url', HTMLInputElement);
    const ok = await copyText(input.value, input);
    byId('commune-copy-msg').textContent = this.i18n.t(ok ? 'common.copied' : 'common.copyManual');
  }

  /**
   * @private
   * @param {CommuneLinkRow} l
   */
  async revoke(l) {
    try {
      await apiJSON(this.auth, 'DELETE', `${this.path()}/${encodeURIComponent(l.id)}`);
      await this.load();
      this.say(this.i18n.t('communes.revoked'));
    } catch (err) {
      this.say(failure(this.i18n, err));
    }
  }

  /** @private */
  render() {
    const { i18n } = this;
    byId('commune-actions').hidden = !this.code || byId('commune-msg').textContent !== '';
    const items = this.links.map((l) => {
      const li = document.createElement('li');
      li.className = 'item';
      li.dataset.id = l.id;
      li.dataset.state = l.state;
      const head = document.createElement('p');
      head.className = 'item-head';
      const label = document.createElement('strong');
      label.textContent = l.label;
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = i18n.has(`tokens.state.${l.state}`) ? i18n.t(`tokens.state.${l.state}`) : l.state;
      head.append(label, ' ', badge);
      const meta = document.createElement('p');
      meta.className = 'item-meta';
      meta.textContent = [i18n.t('tokens.created_at', { time: fmtTime(l.created_at, this.i18n.lang, true, true) }),
        i18n.t(l.state === 'expired' ? 'communes.expired_at' : 'tokens.expires_at', { time: fmtTime(l.expires_at, this.i18n.lang, true, true) })].join(' · ');
      li.append(head, meta);
      if (l.state === 'active') {
        li.append(twoStepButton({
          label: i18n.t('tokens.revoke'),
          confirmLabel: i18n.t('tokens.revokeConfirm'),
          cancelLabel: i18n.t('common.cancel'),
          className: 'revoke',
          key: `commune-link:${l.id}`,
          onConfirm: () => this.revoke(l),
        }));
      }
      return li;
    });
    byId('commune-links').replaceChildren(...items);
    if (this.code && !items.length && !byId('commune-msg').textContent) this.say(i18n.t('communes.empty'));
  }
}
