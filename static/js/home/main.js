// The staff home (/): the login form when no session is open; once logged
// in, who we are, the events we belong to (each with its room, its log and,
// for operators, the morning report), logout here or everywhere; and for
// administrators the API tokens, the users and the audit log (admin.js).
// The server decides every right; the page only hides what cannot be used.

import { I18n, bindLanguage } from '../i18n.js';
import { byId, find } from '../ui.js';
import { ApiError, apiJSON, failure, getSession, logIn, logOut, logOutEverywhere, sessionAuth } from '../api.js';
import { Admin, roleName } from './admin.js';
import { CommuneLinks } from './communes.js';

/**
 * @typedef {import('../api.js').Session} Session
 * @typedef {import('../api.js').Auth} Auth
 * @typedef {{slug: string, parent?: string, title?: string, kind?: string, room?: string}} HomeEvent
 */

/** Roles that may open the printable log and the morning report. */
const LOG_ROLES = new Set(['admin', 'operator', 'host', 'participant']);
const REPORT_ROLES = new Set(['admin', 'operator', 'host']);

/**
 * Where to go after logging in: only a page of this site (?next=/r/main).
 * @returns {string}
 */
function nextPath() {
  const next = new URLSearchParams(location.search).get('next') ?? '';
  return /^\/(r|log)\/[^/?#]+\/?$|^\/report$/.test(next) ? next : '';
}

/**
 * A wait in words: "45 s", "3 min".
 * @param {I18n} i18n
 * @param {number} ms
 */
function waitText(i18n, ms) {
  const s = Math.max(1, Math.ceil(ms / 1000));
  return s < 90 ? i18n.t('wait.seconds', { n: s }) : i18n.t('wait.minutes', { n: Math.ceil(s / 60) });
}

class Home {
  /** @param {I18n} i18n */
  constructor(i18n) {
    this.i18n = i18n;
    /** @type {Session|null} */
    this.session = null;
    /** @type {Auth} */
    this.auth = sessionAuth('');
    /** @type {HomeEvent[]} */
    this.events = [];
    this.eventsError = '';
    /** @type {Admin|null} */
    this.admin = null;
    /** @type {CommuneLinks|null} */
    this.communes = null;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.waitTimer = undefined;
    find(document, '#login-form', HTMLFormElement).addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.login();
    });
    byId('logout').addEventListener('click', () => void this.logout(false));
    byId('logout-all').addEventListener('click', () => void this.logout(true));
    i18n.onChange(() => this.renderHome());
  }

  async start() {
    try {
      const s = await getSession();
      if (s) {
        await this.loggedIn(s);
        return;
      }
    } catch (err) {
      this.showLogin();
      this.loginError(this.i18n.t(err instanceof ApiError && err.status !== 0 ? 'login.other' : 'login.offline', { why: err instanceof Error ? err.message : '' }));
      return;
    }
    this.showLogin();
  }

  // ---- logging in ---------------------------------------------------------

  /** @private */
  showLogin() {
    byId('view-loading').hidden = true;
    byId('view-home').hidden = true;
    byId('view-login').hidden = false;
    document.body.dataset.state = 'login';
    const login = find(document, '#login', HTMLInputElement);
    (login.value ? find(document, '#password', HTMLInputElement) : login).focus();
  }

  /** @private */
  async login() {
    const login = find(document, '#login', HTMLInputElement);
    const password = find(document, '#password', HTMLInputElement);
    const btn = find(document, '#login-submit', HTMLButtonElement);
    if (btn.disabled) return;
    if (!login.value.trim() || !password.value) {
      this.loginError(this.i18n.t('login.missing'));
      (login.value.trim() ? password : login).focus();
      return;
    }
    byId('login-note').hidden = true;
    this.loginError('');
    btn.disabled = true;
    btn.textContent = this.i18n.t('login.submitting');
    /** @type {number|null} */
    let waitMs = null;
    try {
      const s = await logIn(login.value.trim(), password.value);
      password.value = '';
      const next = nextPath();
      if (next) {
        location.assign(next);
        return;
      }
      await this.loggedIn(s);
    } catch (err) {
      password.value = '';
      password.focus();
      if (!(err instanceof ApiError) || err.status === 0) {
        this.loginError(this.i18n.t('login.offline'));
      } else if (err.status === 401) {
        this.loginError(this.i18n.t('login.bad'));
      } else if (err.status === 429) {
        waitMs = err.retryAfterMs;
        this.loginError(waitMs ? this.i18n.t('login.rateLimited', { wait: waitText(this.i18n, waitMs) }) : this.i18n.t('login.rateLimitedNoWait'));
      } else {
        this.loginError(this.i18n.t('login.other', { why: err.message }));
      }
    } finally {
      btn.textContent = this.i18n.t('login.submit');
      btn.disabled = false;
      if (waitMs) this.holdLogin(waitMs);
    }
  }

  /**
   * Rate limited: the button stays off and the message counts down, so
   * that nobody burns the next attempts by pressing again.
   * @private
   * @param {number} ms
   */
  holdLogin(ms) {
    const btn = find(document, '#login-submit', HTMLButtonElement);
    const until = Date.now() + ms;
    btn.disabled = true;
    clearInterval(this.waitTimer);
    this.waitTimer = setInterval(() => {
      const left = until - Date.now();
      if (left <= 0) {
        clearInterval(this.waitTimer);
        btn.disabled = false;
        this.loginError('');
        return;
      }
      this.loginError(this.i18n.t('login.rateLimited', { wait: waitText(this.i18n, left) }));
    }, 1000);
  }

  /**
   * @private
   * @param {string} text  '' hides it
   */
  loginError(text) {
    const el = byId('login-error');
    el.textContent = text;
    el.hidden = !text;
  }

  // ---- logged in ----------------------------------------------------------

  /**
   * @private
   * @param {Session} s
   */
  async loggedIn(s) {
    this.session = s;
    this.auth.csrf = s.csrf; // shared by reference with every panel
    byId('view-loading').hidden = true;
    byId('view-login').hidden = true;
    byId('view-home').hidden = false;
    document.body.dataset.state = 'home';
    byId('me-msg').textContent = '';
    await this.loadEvents();
    this.renderHome();
    if (s.user.admin) {
      this.admin ??= new Admin({ i18n: this.i18n, auth: this.auth });
      this.admin.start(this.events, String(s.user.id));
    }
    for (const id of ['sec-tokens', 'sec-users', 'sec-audit']) byId(id).hidden = !s.user.admin;
    // Commune links: the standing event's operators and the administrators.
    const main = this.events.find((e) => e.slug === 'main');
    const linkStaff = s.user.admin || (main !== undefined && this.roleIn(main) === 'operator');
    if (linkStaff) this.communes ??= new CommuneLinks({ i18n: this.i18n, auth: this.auth });
    byId('sec-communes').hidden = !linkStaff;
  }

  /** @private */
  async loadEvents() {
    this.eventsError = '';
    try {
      const r = await apiJSON(this.auth, 'GET', '/api/v1/events');
      /** @type {HomeEvent[]} */
      const list = Array.isArray(r?.events) ? r.events : [];
      this.events = list.filter((e) => e && typeof e.slug === 'string');
    } catch (err) {
      // The memberships still say where we may go.
      this.events = (this.session?.memberships ?? []).map((m) => ({ slug: m.event, title: m.event }));
      this.eventsError = err instanceof ApiError && err.status !== 0 ? err.message : this.i18n.t('common.offline');
    }
  }

  /**
   * Our role in an event: its membership, else its parent's (sub-events),
   * else admin for an administrator.
   * @private
   * @param {HomeEvent} e
   * @returns {string}
   */
  roleIn(e) {
    const ms = this.session?.memberships ?? [];
    const own = ms.find((m) => m.event === e.slug)?.role;
    if (own) return own;
    const parent = e.parent ? ms.find((m) => m.event === e.parent)?.role : '';
    if (parent) return parent;
    return this.session?.user.admin ? 'admin' : '';
  }

  /** @private */
  renderHome() {
    const s = this.session;
    if (!s) return;
    const { i18n } = this;
    byId('hello').textContent = i18n.t('home.hello', { name: s.user.name || s.user.login });
    byId('me-meta').textContent = i18n.t('home.as', { login: s.user.login }) + (s.user.admin ? ` · ${i18n.t('home.admin')}` : '');
    const msg = byId('events-msg');
    msg.textContent = this.eventsError ? i18n.t('home.eventsFailed', { why: this.eventsError }) : this.events.length ? '' : i18n.t('home.eventsEmpty');
    byId('events').replaceChildren(...this.ordered().map((e) => this.eventItem(e)));
  }

  /**
   * Each event followed by its sub-events.
   * @private
   * @returns {HomeEvent[]}
   */
  ordered() {
    const slugs = new Set(this.events.map((e) => e.slug));
    const roots = this.events.filter((e) => !e.parent || !slugs.has(e.parent));
    /** @type {HomeEvent[]} */
    const out = [];
    for (const r of roots) {
      out.push(r);
      for (const c of this.events) if (c.parent === r.slug) out.push(c);
    }
    for (const e of this.events) if (!out.includes(e)) out.push(e);
    return out;
  }

  /**
   * @private
   * @param {HomeEvent} e
   */
  eventItem(e) {
    const { i18n } = this;
    const role = this.roleIn(e);
    const li = document.createElement('li');
    li.className = 'event';
    li.dataset.slug = e.slug;
    if (e.parent) li.classList.add('sub');
    const head = document.createElement('p');
    head.className = 'ev-head';
    const title = document.createElement('strong');
    title.textContent = e.title || e.slug;
    head.append(title);
    /** @type {string[]} */
    const notes = [];
    if (e.parent) notes.push(e.kind && i18n.has(`log.ek.${e.kind}`) ? i18n.t(`log.ek.${e.kind}`) : i18n.t('home.sub'));
    if (role) notes.push(i18n.t('home.role', { role: roleName(i18n, role) }));
    if (notes.length) {
      const meta = document.createElement('span');
      meta.className = 'ev-meta';
      meta.textContent = notes.join(' · ');
      head.append(meta);
    }
    const actions = document.createElement('p');
    actions.className = 'ev-actions';
    if (role !== 'declarant') actions.append(link(i18n.t('home.enter'), `/r/${encodeURIComponent(e.room || e.slug)}`, 'primary enter'));
    if (LOG_ROLES.has(role)) actions.append(link(i18n.t('home.log'), `/log/${encodeURIComponent(e.slug)}`, 'secondary'));
    if (REPORT_ROLES.has(role) && !e.parent) actions.append(link(i18n.t('home.report'), '/report', 'secondary'));
    li.append(head, actions);
    return li;
  }

  /**
   * @private
   * @param {boolean} everywhere
   */
  async logout(everywhere) {
    const msg = byId('me-msg');
    msg.textContent = '';
    try {
      let note = '';
      if (everywhere) {
        const r = await logOutEverywhere(this.auth);
        note = this.i18n.t('home.loggedOutAll', { n: r?.ended ?? 0 });
      } else {
        await logOut(this.auth);
      }
      this.session = null;
      this.auth.csrf = '';
      this.admin?.stop();
      this.communes?.stop();
      const el = byId('login-note');
      el.textContent = note;
      el.hidden = !note;
      this.showLogin();
    } catch (err) {
      msg.textContent = failure(this.i18n, err);
    }
  }
}

/**
 * @param {string} text
 * @param {string} href
 * @param {string} cls
 */
function link(text, href, cls) {
  const a = document.createElement('a');
  a.href = href;
  a.className = cls;
  a.textContent = text;
  return a;
}

function main() {
  const i18n = new I18n();
  bindLanguage(i18n, 'home.title');
  void new Home(i18n).start();
}

main();
