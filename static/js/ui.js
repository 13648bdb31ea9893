// DOM pieces of the room: video tiles, the participant list and the chat
// log. Everything a peer sends (names, chat text) reaches the page through
// textContent only; markup comes from <template>s in index.html.

import { isHostRole } from './protocol.js';

/**
 * @typedef {import('./protocol.js').PeerState} PeerState
 * @typedef {import('./i18n.js').I18n} I18n
 *
 * @typedef {object} Member
 * @property {string} id
 * @property {string} name
 * @property {string} role
 * @property {PeerState} state
 * @property {boolean} self
 * @property {string} [conn]   RTCPeerConnectionState of the link to them
 */

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html lacks #${id}`);
  return el;
}

/**
 * @template {Element} T
 * @param {ParentNode} root
 * @param {string} sel
 * @param {new (...args: any[]) => T} type
 * @returns {T}
 */
export function find(root, sel, type) {
  const el = root.querySelector(sel);
  if (!(el instanceof type)) throw new Error(`missing ${sel}`);
  return el;
}

/**
 * Clones the first element of a <template>.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function cloneTemplate(id) {
  const tpl = byId(id);
  if (!(tpl instanceof HTMLTemplateElement)) throw new Error(`#${id} is not a template`);
  const el = tpl.content.firstElementChild?.cloneNode(true);
  if (!(el instanceof HTMLElement)) throw new Error(`#${id} is empty`);
  return el;
}

/**
 * Up to two initials for the placeholder shown when a camera is off.
 * @param {string} name
 */
export function initials(name) {
  // The first letter of the first two words that have one: "<b>" or "–"
  // are not initials.
  const letters = [];
  for (const w of name.trim().split(/\s+/)) {
    const m = /\p{L}/u.exec(w);
    if (m) letters.push(m[0]);
    if (letters.length === 2) break;
  }
  return letters.join('').toUpperCase() || '?';
}

/** One video tile in the grid. */
export class Tile {
  /**
   * @param {string} id
   * @param {boolean} self
   * @param {(video: HTMLVideoElement) => void} onBlocked  autoplay with sound was refused
   */
  constructor(id, self, onBlocked) {
    this.id = id;
    this.self = self;
    this.el = cloneTemplate('tpl-tile');
    this.el.dataset.peer = id;
    this.el.classList.toggle('self', self);
    this.video = find(this.el, 'video', HTMLVideoElement);
    // Our own preview must never play back our voice.
    this.video.muted = self;
    this.name = find(this.el, '.name', HTMLElement);
    this.avatar = find(this.el, '.avatar span', HTMLElement);
    this.micOff = find(this.el, '.mic-off', Element);
    this.hand = find(this.el, '.hand', Element);
    this.onBlocked = onBlocked;
    /** @type {MediaStream|null} */
    this.stream = null;
    /** @type {{stream: MediaStream, video: HTMLVideoElement, done: Promise<boolean>, cancel: () => void}|null} a swap waiting for frames */
    this.next = null;
  }

  /** @param {string} label */
  setName(label) {
    this.name.textContent = label;
    this.avatar.textContent = initials(label);
  }

  /** @param {MediaStream} stream */
  setStream(stream) {
    if (this.next && this.next.stream !== stream) this.cancelSwap();
    if (this.stream !== stream) {
      this.stream = stream;
      this.video.srcObject = stream;
    }
    this.play();
  }

  /**
   * Moves the tile to another stream without a black frame: a second video
   * plays it under the current one, and takes its place once it shows
   * frames. Resolves false when another swap or setStream came first, or
   * when nothing played within timeoutMs.
   * @param {MediaStream} stream
   * @param {number} [timeoutMs]
   * @returns {Promise<boolean>}
   */
  swapStream(stream, timeoutMs = 15000) {
    if (this.stream === stream) return Promise.resolve(true);
    if (this.next?.stream === stream) return this.next.done;
    this.cancelSwap();
    if (!this.stream || stream.getVideoTracks().length === 0) {
      this.setStream(stream);
      return Promise.resolve(true);
    }
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true; // one voice at a time until it takes over
    video.className = 'next';
    video.srcObject = stream;
    this.el.insertBefore(video, this.video); // painted under the current one
    /** @type {(ok: boolean) => void} */
    let settle = () => {};
    const done = new Promise((resolve) => { settle = resolve; });
    const started = Date.now();
    const t0 = video.currentTime;
    const timer = setInterval(() => {
      // Frames shown: a size, and a clock that moves.
      if (video.videoWidth > 0 && video.currentTime > t0 && video.readyState >= 2) finish(true);
      else if (Date.now() - started > timeoutMs) finish(false);
    }, 50);
    /** @param {boolean} ok */
    const finish = (ok) => {
      if (this.next?.video !== video) return;
      clearInterval(timer);
      this.next = null;
      if (ok) {
        video.muted = this.video.muted;
        video.classList.remove('next');
        const old = this.video;
        this.video = video;
        this.stream = stream;
        old.srcObject = null;
        old.remove();
        this.play();
      } else {
        video.srcObject = null;
        video.remove();
      }
      settle(ok);
    };
    if (typeof video.requestVideoFrameCallback === 'function') video.requestVideoFrameCallback(() => finish(true));
    this.next = { stream, video, done, cancel: () => finish(false) };
    void video.play().catch(() => {});
    return done;
  }

  /** Drops a swap in progress. */
  cancelSwap() {
    this.next?.cancel();
  }

  play() {
    if (!this.video.paused) return;
    this.video.play().catch((err) => {
      if (err instanceof DOMException && err.name === 'NotAllowedError' && !this.video.muted) {
        // Playing muted is always allowed; the banner offers the sound back.
        this.video.muted = true;
        void this.video.play().catch(() => {});
        this.onBlocked(this.video);
      }
    });
  }

  /** @param {PeerState} s */
  setState(s) {
    const showVideo = s.video || s.screen;
    this.el.classList.toggle('video-off', !showVideo);
    this.el.classList.toggle('screen', s.screen);
    this.el.classList.toggle('hand-up', s.hand);
    // The indicators are SVG elements, which have no .hidden property.
    this.micOff.toggleAttribute('hidden', s.audio);
    this.hand.toggleAttribute('hidden', !s.hand);
  }

  /** @param {boolean} on */
  setSpeaking(on) {
    this.el.classList.toggle('speaking', on);
  }

  /** @param {boolean} on */
  setActive(on) {
    this.el.classList.toggle('active', on);
  }

  /** @param {string} state */
  setConn(state) {
    this.el.dataset.conn = state;
  }

  remove() {
    this.cancelSwap();
    this.video.srcObject = null;
    this.el.remove();
  }
}

/** The responsive grid: CSS does the layout from the tile count. */
export class Grid {
  /** @param {HTMLElement} el */
  constructor(el) {
    this.el = el;
    /** @type {Map<string, Tile>} */
    this.tiles = new Map();
  }

  /** @param {Tile} tile */
  add(tile) {
    this.tiles.set(tile.id, tile);
    if (tile.self) this.el.prepend(tile.el);
    else this.el.append(tile.el);
    this.layout();
  }

  /** @param {string} id */
  get(id) {
    return this.tiles.get(id);
  }

  /** @param {string} id */
  remove(id) {
    this.tiles.get(id)?.remove();
    this.tiles.delete(id);
    this.layout();
  }

  clear() {
    for (const t of this.tiles.values()) t.remove();
    this.tiles.clear();
    this.layout();
  }

  /** @private */
  layout() {
    this.el.dataset.count = String(this.tiles.size);
  }
}

/**
 * Renders the participant list (ourselves first, then by name).
 * @param {HTMLElement} list
 * @param {Member[]} members
 * @param {I18n} i18n
 */
export function renderPeople(list, members, i18n) {
  const sorted = [...members].sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name));
  list.replaceChildren(...sorted.map((m) => personItem(m, i18n)));
}

/**
 * @param {Member} m
 * @param {I18n} i18n
 */
function personItem(m, i18n) {
  const li = cloneTemplate('tpl-person');
  li.dataset.peer = m.id;
  find(li, '.avatar', HTMLElement).textContent = initials(m.name);
  find(li, '.name', HTMLElement).textContent = m.self ? `${m.name} ${i18n.t('people.you')}` : m.name;
  /** @type {string[]} */
  const notes = [];
  if (isHostRole(m.role)) notes.push(i18n.t('people.host'));
  else if (m.role === 'guest') notes.push(i18n.t('people.guest'));
  if (m.state.screen) notes.push(i18n.t('people.sharing'));
  if (!m.self && m.conn && m.conn !== 'connected') notes.push(i18n.t('people.connecting'));
  find(li, '.meta', HTMLElement).textContent = notes.join(' · ');
  /** @type {Array<[string, boolean, string]>} */
  const flags = [['.hand', m.state.hand, 'people.handUp'], ['.mic-off', !m.state.audio, 'people.micOff'], ['.cam-off', !m.state.video && !m.state.screen, 'people.camOff']];
  for (const [sel, on, key] of flags) {
    const ind = find(li, sel, Element);
    ind.toggleAttribute('hidden', !on);
    ind.setAttribute('aria-label', i18n.t(key));
  }
  return li;
}

/** The chat log. */
export class ChatLog {
  /**
   * @param {HTMLElement} list
   * @param {I18n} i18n
   */
  constructor(list, i18n) {
    this.list = list;
    this.i18n = i18n;
  }

  /**
   * @param {{name: string, text: string, at: number, self: boolean}} m
   */
  message(m) {
    const li = cloneTemplate('tpl-chat');
    li.classList.toggle('mine', m.self);
    find(li, '.who', HTMLElement).textContent = m.name;
    const time = find(li, 'time', HTMLTimeElement);
    const d = new Date(m.at);
    time.dateTime = d.toISOString();
    time.textContent = d.toLocaleTimeString(this.i18n.lang, { hour: '2-digit', minute: '2-digit' });
    find(li, '.text', HTMLElement).textContent = m.text;
    this.append(li);
  }

  /** @param {string} text  already translated */
  system(text) {
    const li = document.createElement('li');
    li.className = 'system';
    li.textContent = text;
    this.append(li);
  }

  /**
   * @private
   * @param {HTMLElement} li
   */
  append(li) {
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    this.list.append(li);
    // Bound the DOM in a room that runs for days.
    while (this.list.childElementCount > 500) this.list.firstElementChild?.remove();
    if (atBottom || li.classList.contains('mine')) this.list.scrollTop = this.list.scrollHeight;
  }
}

/**
 * The small badge beside the room's name: how the video travels.
 * @param {I18n} i18n
 * @param {'mesh'|'sfu'} mode
 */
export function showMode(i18n, mode) {
  const el = byId('mode-badge');
  el.hidden = false;
  el.dataset.mode = mode;
  el.textContent = i18n.t(`transport.${mode}`);
  el.title = i18n.t(`transport.${mode}Title`);
}

/**
 * Opens one side panel (or none): panels, tabs and buttons say which.
 * @param {'people'|'chat'|'log'|'guests'|null} panel
 */
export function showPanel(panel) {
  byId('view-room').dataset.panel = panel ?? '';
  byId('side').hidden = panel === null;
  byId('view-room').classList.toggle('with-side', panel !== null);
  for (const p of ['people', 'chat', 'log', 'guests']) {
    byId(`panel-${p}`).hidden = panel !== p;
    byId(`tab-${p}`).setAttribute('aria-selected', String(panel === p));
  }
  for (const p of ['people', 'chat', 'log']) byId(`ctl-${p}`).setAttribute('aria-expanded', String(panel === p));
  // Four tabs overflow a phone: bring the chosen one into view.
  if (panel) document.getElementById(`tab-${panel}`)?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
}

/**
 * The unread chat count on the chat button.
 * @param {number} n
 */
export function showUnread(n) {
  const badge = byId('unread');
  badge.hidden = n === 0;
  badge.textContent = n > 99 ? '99+' : String(n);
}
