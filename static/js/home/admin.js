// The administrators' part of the staff home: API tokens (create with a
// role, an event and an expiry; the token is shown once; list; revoke),
// users (create; give or take a role in an event; disable) and the audit
// log. Every
// value a person typed reaches the page through textContent only.

import { byId, find } from '../ui.js';
import { fmtTime } from '../mainlog-data.js';
import { apiJSON, copyText, failure } from '../api.js';
import { twoStepButton } from '../confirm.js';

/**
 * @typedef {import('../i18n.js').I18n} I18n
 * @typedef {import('../api.js').Auth} Auth
 * @typedef {{slug: string, parent?: string, title?: string}} AdminEvent
 * @typedef {{id: number|string, user_id: number|string, role: string, event?: string, label?: string,
 *   created_at: string, expires_at?: string|null, revoked_at?: string|null}} ApiToken
 * @typedef {{id: number|string, login: string, name?: string, admin?: boolean, disabled_at?: string,
 *   memberships?: Array<{event: string, role: string}>}} UserRow
 * @typedef {{id: number|string, at: string, actor?: string, action: string, target?: string, ip?: string, detail?: unknown}} AuditRow
 */

const AUDIT_SHOWN = 200;

export class Admin {
  /** @param {{i18n: I18n, auth: Auth}} opts */
  constructor(opts) {
    this.i18n = opts.i18n;
    this.auth = opts.auth;
    /** @type {AdminEvent[]} */
    this.events = [];
    /** @type {UserRow[]} */
    this.users = [];
    /** @type {ApiToken[]} */
    this.tokens = [];
    /** @type {AuditRow[]} */
    this.audit = [];
    /** @type {Record<string, string>} the last error of each list, shown on language change */
    this.errors = {};
    this.on = false;
    /** @type {string} the admin's own account: never offered to disable */
    this.self = '';
    this.form('#token-form', () => this.createToken());
    this.form('#user-form', () => this.createUser());
    this.form('#role-form', () => this.setRole());
    byId('tokens-refresh').addEventListener('click', () => void this.loadTokens());
    byId('users-refresh').addEventListener('click', () => void this.loadUsers());
    byId('audit-refresh').addEventListener('click', () => void this.loadAudit());
    byId('token-copy').addEventListener('click', () => void this.copyToken());
    this.i18n.onChange(() => { if (this.on) this.renderAll(); });
  }

  /**
   * Shows the sections and loads their lists.
   * @param {AdminEvent[]} events  the events the home listed
   * @param {string} self  the logged-in admin's user id
   */
  start(events, self) {
    this.on = true;
    this.events = events;
    this.self = self;
    this.renderEventSelects();
    void this.loadUsers().then(() => this.loadTokens());
    void this.loadAudit();
  }

  /** Logged out: forget what was shown. */
  stop() {
    this.on = false;
    this.users = [];
    this.tokens = [];
    this.audit = [];
    byId('token-result').hidden = true;
    find(document, '#token-value', HTMLInputElement).value = '';
    this.renderAll();
  }

  // ---- plumbing ----------------------------------------------------------------

  /**
   * @private
   * @param {string} sel
   * @param {() => Promise<void>} submit
   */
  form(sel, submit) {
    const f = find(document, sel, HTMLFormElement);
    f.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!f.checkValidity()) {
        f.reportValidity();
        return;
      }
      const btn = f.querySelector('button[type="submit"]');
      if (btn instanceof HTMLButtonElement) btn.disabled = true;
      void submit().finally(() => { if (btn instanceof HTMLButtonElement) btn.disabled = false; });
    });
  }

  /**
   * @private
   * @param {string} id
   * @param {string} text
   */
  say(id, text) {
    byId(id).textContent = text;
  }

  /** @private */
  renderAll() {
    this.renderEventSelects();
    this.renderUsers();
    this.renderTokens();
    this.renderAudit();
  }

  /** Fills the event pickers, keeping what was chosen. @private */
  renderEventSelects() {
    for (const sel of document.querySelectorAll('select.event-select')) {
      if (!(sel instanceof HTMLSelectElement)) continue;
      const keep = sel.value;
      /** @type {HTMLOptionElement[]} */
      const opts = [];
      const all = sel.dataset.all;
      if (all) opts.push(new Option(this.i18n.t(all), ''));
      for (const e of this.events) opts.push(new Option(e.title ? `${e.title} (${e.slug})` : e.slug, e.slug));
      sel.replaceChildren(...opts);
      if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
    }
  }

  // ---- API tokens -------------------------------------------------------------

  /** @private */
  async loadTokens() {
    this.say('tokens-msg', this.i18n.t('common.loading'));
    try {
      const list = await apiJSON(this.auth, 'GET', '/api/v1/tokens');
      this.tokens = Array.isArray(list) ? list : [];
      this.say('tokens-msg', '');
    } catch (err) {
      this.say('tokens-msg', failure(this.i18n, err));
    }
    this.renderTokens();
  }

  /** @private */
  async createToken() {
    const val = (/** @type {string} */ id) => /** @type {HTMLInputElement|HTMLSelectElement} */ (byId(id)).value.trim();
    /** @type {Record<string, string>} */
    const body = { user: val('token-user'), role: val('token-role'), expires: val('token-expires'), label: val('token-label') };
    const event = val('token-event');
    if (event) body.event = event;
    this.say('token-msg', '');
    try {
      /** @type {{token?: string}} */
      const made = await apiJSON(this.auth, 'POST', '/api/v1/tokens', body);
      const out = find(document, '#token-value', HTMLInputElement);
      out.value = made?.token ?? '';
      this.say('token-copy-msg', '');
      byId('token-result').hidden = false;
      find(document, '#token-form', HTMLFormElement).reset();
      this.renderEventSelects();
      await this.loadTokens();
    } catch (err) {
      this.say('token-msg', failure(this.i18n, err));
    }
  }

  /** @private */
  async copyToken() {
    const input = find(document, '#token-value', HTMLInputElement);
    const ok = await copyText(input.value, input);
    this.say('token-copy-msg', this.i18n.t(ok ? 'common.copied' : 'common.copyManual'));
  }

  /** @private */
  renderTokens() {
    const { i18n } = this;
    const logins = new Map(this.users.map((u) => [String(u.id), u.login]));
    const newest = [...this.tokens].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    const items = newest.map((t) => {
      const state = t.revoked_at ? 'revoked' : t.expires_at && Date.parse(t.expires_at) <= Date.now() ? 'expired' : 'active';
      const li = document.createElement('li');
      li.className = 'item';
      li.dataset.id = String(t.id);
      li.dataset.state = state;
      const head = document.createElement('p');
      head.className = 'item-head';
      const label = document.createElement('strong');
      label.textContent = t.label || `#${t.id}`;
      head.append(label, ' ', badge(i18n.t(`tokens.state.${state}`)));
      const meta = document.createElement('p');
      meta.className = 'item-meta';
      const who = logins.get(String(t.user_id)) ?? String(t.user_id);
      const parts = [who, roleName(i18n, t.role), t.event || i18n.t('tokens.eventAll'), i18n.t('tokens.created_at', { time: fmtTime(t.created_at, this.i18n.lang, true, true) })];
      if (t.expires_at) parts.push(i18n.t('tokens.expires_at', { time: fmtTime(t.expires_at, this.i18n.lang, true, true) }));
      meta.textContent = parts.join(' · ');
      li.append(head, meta);
      if (state === 'active') {
        li.append(twoStepButton({
          label: i18n.t('tokens.revoke'),
          confirmLabel: i18n.t('tokens.revokeConfirm'),
          cancelLabel: i18n.t('common.cancel'),
          className: 'revoke',
          key: `token:${t.id}`,
          onConfirm: () => this.revokeToken(t),
        }));
      }
      return li;
    });
    byId('tokens').replaceChildren(...items);
    if (!items.length && !byId('tokens-msg').textContent) this.say('tokens-msg', i18n.t('tokens.empty'));
  }

  /**
   * @private
   * @param {ApiToken} t
   */
  async revokeToken(t) {
    try {
      await apiJSON(this.auth, 'DELETE', `/api/v1/tokens/${encodeURIComponent(String(t.id))}`);
      await this.loadTokens();
      this.say('tokens-msg', this.i18n.t('tokens.revoked'));
    } catch (err) {
      this.say('tokens-msg', failure(this.i18n, err));
    }
  }

  // ---- users ----------------------------------------------------------------------

  /** @private */
  async loadUsers() {
    this.say('users-msg', this.i18n.t('common.loading'));
    try {
      const list = await apiJSON(this.auth, 'GET', '/api/v1/users');
      this.users = Array.isArray(list) ? list : [];
      this.say('users-msg', '');
    } catch (err) {
      this.say('users-msg', failure(this.i18n, err));
    }
    this.renderUsers();
  }

  /** @private */
  async createUser() {
    const login = find(document, '#user-login', HTMLInputElement).value.trim();
    const body = {
      login,
      name: find(document, '#user-name', HTMLInputElement).value.trim(),
      password: find(document, '#user-password', HTMLInputElement).value,
      admin: find(document, '#user-admin', HTMLInputElement).checked,
    };
    this.say('user-msg', '');
    try {
      await apiJSON(this.auth, 'POST', '/api/v1/users', body);
      find(document, '#user-form', HTMLFormElement).reset();
      this.say('user-msg', this.i18n.t('users.created', { login }));
      await this.loadUsers();
    } catch (err) {
      this.say('user-msg', failure(this.i18n, err));
    }
  }

  /** @private */
  async setRole() {
    const user = find(document, '#role-user', HTMLSelectElement).value;
    const event = find(document, '#role-event', HTMLSelectElement).value;
    const role = find(document, '#role-role', HTMLSelectElement).value;
    this.say('role-msg', '');
    try {
      await apiJSON(this.auth, 'PUT', `/api/v1/users/${encodeURIComponent(user)}/events/${encodeURIComponent(event)}`, { role });
      this.say('role-msg', this.i18n.t(role === 'none' ? 'users.roleRemoved' : role ? 'users.roleSet' : 'users.roleInherited'));
      await this.loadUsers();
    } catch (err) {
      this.say('role-msg', failure(this.i18n, err));
    }
  }

  /** @private */
  renderUsers() {
    const { i18n } = this;
    // The pickers: the token form takes a login, the role form an id.
    byId('user-logins').replaceChildren(...this.users.map((u) => new Option(u.name ? `${u.login} — ${u.name}` : u.login, u.login)));
    const sel = find(document, '#role-user', HTMLSelectElement);
    const keep = sel.value;
    sel.replaceChildren(...this.users.map((u) => new Option(u.name ? `${u.name} (${u.login})` : u.login, String(u.id))));
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
    const items = this.users.map((u) => {
      const li = document.createElement('li');
      li.className = 'item';
      li.dataset.id = String(u.id);
      const head = document.createElement('p');
      head.className = 'item-head';
      const name = document.createElement('strong');
      name.textContent = u.name || u.login;
      head.append(name, ' ');
      const login = document.createElement('span');
      login.className = 'item-login';
      login.textContent = u.login;
      head.append(login);
      if (u.admin) head.append(' ', badge(i18n.t('role.admin')));
      if (u.disabled_at) {
        li.dataset.state = 'revoked'; // the revoked tokens' red badge
        head.append(' ', badge(i18n.t('users.disabled')));
      }
      li.append(head);
      const ms = Array.isArray(u.memberships) ? u.memberships : [];
      if (ms.length) {
        const meta = document.createElement('p');
        meta.className = 'item-meta';
        meta.textContent = ms.map((m) => `${m.event} : ${roleName(i18n, m.role)}`).join(' · ');
        li.append(meta);
      }
      if (!u.disabled_at && String(u.id) !== this.self) {
        li.append(twoStepButton({
          label: i18n.t('users.disable'),
          confirmLabel: i18n.t('users.disableConfirm'),
          cancelLabel: i18n.t('common.cancel'),
          className: 'revoke',
          key: `user:${u.id}`,
          onConfirm: () => this.disableUser(u),
        }));
      }
      return li;
    });
    byId('users').replaceChildren(...items);
    if (!items.length && !byId('users-msg').textContent) this.say('users-msg', i18n.t('users.empty'));
  }

  /**
   * Disables an account: the server ends its sessions, tokens and
   * sockets at once.
   * @private
   * @param {UserRow} u
   */
  async disableUser(u) {
    try {
      await apiJSON(this.auth, 'POST', `/api/v1/users/${encodeURIComponent(String(u.id))}/disable`);
      await Promise.all([this.loadUsers(), this.loadTokens(), this.loadAudit()]);
      this.say('users-msg', this.i18n.t('users.disabledDone', { login: u.login }));
    } catch (err) {
      this.say('users-msg', failure(this.i18n, err));
    }
  }

  // ---- audit log --------------------------------------------------------------

  /** @private */
  async loadAudit() {
    this.say('audit-msg', this.i18n.t('common.loading'));
    try {
      const list = await apiJSON(this.auth, 'GET', '/api/v1/audit');
      this.audit = (Array.isArray(list) ? list : []).slice(0, AUDIT_SHOWN);
      this.say('audit-msg', '');
    } catch (err) {
      this.say('audit-msg', failure(this.i18n, err));
    }
    this.renderAudit();
  }

  /** @private */
  renderAudit() {
    const items = this.audit.map((a) => {
      const li = document.createElement('li');
      li.className = 'item audit-item';
      li.dataset.action = String(a.action);
      const head = document.createElement('p');
      head.className = 'item-head';
      const at = document.createElement('time');
      at.dateTime = String(a.at);
      at.textContent = fmtTime(a.at, this.i18n.lang, true, true);
      const action = document.createElement('strong');
      action.textContent = String(a.action);
      head.append(at, ' ', action);
      const meta = document.createElement('p');
      meta.className = 'item-meta';
      /** @type {string[]} */
      const parts = [];
      if (a.actor || a.target) parts.push([a.actor, a.target].filter(Boolean).join(' → '));
      if (a.ip) parts.push(this.i18n.t('audit.ip', { ip: String(a.ip) }));
      if (a.detail !== undefined && a.detail !== null && a.detail !== '') parts.push(typeof a.detail === 'string' ? a.detail : JSON.stringify(a.detail));
      meta.textContent = parts.join(' · ');
      li.append(head, meta);
      return li;
    });
    byId('audit').replaceChildren(...items);
    if (!items.length && !byId('audit-msg').textContent) this.say('audit-msg', this.i18n.t('audit.empty'));
  }
}

/**
 * A role's name, or the role itself when the page does not know it.
 * @param {I18n} i18n
 * @param {string} role
 */
export function roleName(i18n, role) {
  return i18n.has(`role.${role}`) ? i18n.t(`role.${role}`) : role;
}

/** @param {string} text */
function badge(text) {
  const s = document.createElement('span');
  s.className = 'badge';
  s.textContent = text;
  return s;
}
