// The hosts' side of the lobby: guests who came with a "waiting room" link
// wait until a host lets them in or refuses them. The server sends the
// whole waiting list (lobby-list) to everyone who may decide; this banner
// shows it above the room, with one button to admit and one to refuse each
// guest. No sound: the banner, the count in the tab title and a line in the
// chat make it noticeable enough without startling a briefing.

import { byId, initials } from './ui.js';
import { fmtTime } from './mainlog-data.js';

/**
 * @typedef {import('./protocol.js').LobbyGuest} LobbyGuest
 * @typedef {import('./i18n.js').I18n} I18n
 */

export class LobbyHosts {
  /**
   * @param {{i18n: I18n, send: (type: string, data: any) => string|null,
   *   onArrived: (name: string) => void}} opts
   *   onArrived: a guest not seen before is waiting (once per guest)
   */
  constructor(opts) {
    this.i18n = opts.i18n;
    this.send = opts.send;
    this.onArrived = opts.onArrived;
    this.box = byId('waiting');
    this.list = byId('waiting-list');
    /** @type {LobbyGuest[]} */
    this.waiting = [];
    /** @type {Set<string>} guests already announced */
    this.seen = new Set();
    /** @type {Set<string>} guests we answered for, until the next list */
    this.answered = new Set();
    this.i18n.onChange(() => this.render());
  }

  /**
   * A new waiting list from the server (an empty one hides the banner).
   * @param {LobbyGuest[]} waiting
   */
  update(waiting) {
    this.waiting = Array.isArray(waiting) ? waiting.filter((g) => g && typeof g.id === 'string') : [];
    const ids = new Set(this.waiting.map((g) => g.id));
    for (const g of this.waiting) {
      if (!this.seen.has(g.id)) {
        this.seen.add(g.id);
        this.onArrived(String(g.name ?? ''));
      }
    }
    // Forget guests who left the list: a second visit is announced again.
    for (const id of [...this.seen]) if (!ids.has(id)) this.seen.delete(id);
    this.answered.clear();
    this.render();
  }

  /** Hides everything (the session ended). */
  clear() {
    this.update([]);
  }

  /** @private */
  render() {
    const n = this.waiting.length;
    this.box.hidden = n === 0;
    byId('waiting-title').textContent = this.i18n.t('waiting.title', { n });
    this.list.replaceChildren(...this.waiting.map((g) => this.item(g)));
    const base = this.i18n.t('app.title');
    document.title = n ? `(${n}) ${base}` : base;
  }

  /**
   * @private
   * @param {LobbyGuest} g
   */
  item(g) {
    const li = document.createElement('li');
    li.className = 'wait-item';
    li.dataset.id = g.id;
    const avatar = document.createElement('span');
    avatar.className = 'wait-avatar';
    avatar.setAttribute('aria-hidden', 'true');
    avatar.textContent = initials(String(g.name ?? ''));
    const who = document.createElement('span');
    who.className = 'wait-who';
    const name = document.createElement('strong');
    name.textContent = String(g.name ?? '');
    const meta = document.createElement('span');
    meta.className = 'wait-meta';
    /** @type {string[]} */
    const notes = [];
    if (g.since) notes.push(this.i18n.t('waiting.since', { time: fmtTime(g.since, this.i18n.lang, false) }));
    if (g.watch_only) notes.push(this.i18n.t('waiting.watchOnly'));
    if (g.label) notes.push(this.i18n.t('waiting.link', { label: String(g.label) }));
    meta.textContent = notes.join(' · ');
    who.append(name, meta);
    const admit = this.button('waiting.admit', 'wait-admit', g.id, true);
    const refuse = this.button('waiting.refuse', 'wait-refuse', g.id, false);
    const actions = document.createElement('span');
    actions.className = 'wait-actions';
    actions.append(admit, refuse);
    li.append(avatar, who, actions);
    return li;
  }

  /**
   * @private
   * @param {string} key
   * @param {string} cls
   * @param {string} id
   * @param {boolean} allow
   */
  button(key, cls, id, allow) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = cls;
    b.textContent = this.i18n.t(key);
    b.disabled = this.answered.has(id);
    b.addEventListener('click', () => {
      if (this.answered.has(id)) return;
      // The next lobby-list confirms; until then the row cannot be answered twice.
      if (this.send('admit', { id, allow }) === null) return;
      this.answered.add(id);
      for (const other of this.list.querySelectorAll(`li[data-id="${CSS.escape(id)}"] button`)) {
        /** @type {HTMLButtonElement} */ (other).disabled = true;
      }
    });
    return b;
  }
}
