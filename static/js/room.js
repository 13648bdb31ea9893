// The room: the signaling socket, one PeerLink per member, our own media,
// the map and the main courante, and the DOM. Entered with a link's token
// or with the staff session (see app.js); a guest may wait in the lobby
// first, a watch-only guest only receives.

import { Close, cleanName, isHostRole } from './protocol.js';
import { Signaling } from './signal.js';
import { PeerLink } from './peer.js';
import { LocalMedia } from './media.js';
import { SpeakerDetector } from './speaker.js';
import { LiveMap } from './map.js';
import { MainLog } from './mainlog.js';
import { byId, find, Tile, Grid, renderPeople, ChatLog, showMode, showPanel, showUnread } from './ui.js';
import { wireModeChoice } from './modechoice.js';
import { MediaModes } from './sfu.js';
import { showFinal, relabelFinal, setConn } from './final.js';

import { LobbyHosts } from './lobby.js';
import { GuestLinks } from './guests.js';

/**
 * @typedef {import('./i18n.js').I18n} I18n
 * @typedef {import('./protocol.js').Envelope} Envelope
 * @typedef {import('./protocol.js').Joined} Joined
 * @typedef {import('./protocol.js').PeerInfo} PeerInfo
 * @typedef {import('./protocol.js').PeerState} PeerState
 * @typedef {import('./protocol.js').ICEServer} ICEServer
 * @typedef {import('./ui.js').Member} Member
 * @typedef {import('./api.js').Auth} Auth
 * @typedef {import('./api.js').Session} Session
 * @typedef {'landing'|'prejoin'|'lobby'|'room'|'final'} View
 * @typedef {'people'|'chat'|'log'|'guests'} Panel
 */

const SELF = 'self'; // grid and detector key of our own tile
const NAME_KEY = 'crisisroom.name';

/** @param {View} view */
export function show(view) {
  for (const v of /** @type {View[]} */ (['landing', 'prejoin', 'lobby', 'room', 'final'])) {
    byId(`view-${v}`).hidden = v !== view;
  }
  document.body.dataset.view = view;
}

/**
 * Whether this tab already learnt that its link is watch only: a reload
 * must not ask for the camera again. A link may also say so in its
 * fragment (w=1), so that even the first visit asks for nothing.
 * @param {string} room
 */
function knownWatchOnly(room) {
  if (new URLSearchParams(location.hash.slice(1)).get('w') === '1') return true;
  try {
    return sessionStorage.getItem(`crisisroom.watch.${room}`) === '1';
  } catch {
    return false;
  }
}

export class RoomApp {
  /**
   * @param {I18n} i18n
   * @param {string} room
   * @param {Auth} auth  the link's token, or the staff session
   * @param {Session|null} session  the staff member, when entered with the session
   */
  constructor(i18n, room, auth, session) {
    this.i18n = i18n;
    this.room = room;
    this.auth = auth;
    this.session = session;
    this.role = '';
    /** @type {string[]|null} what the server says this member may do in the room */
    this.can = null;
    /** a watch-only guest: receives, never sends, never annotates */
    this.watchOnly = !session && knownWatchOnly(room);
    this.inLobby = false;
    /** @type {GuestLinks|null} */
    this.guests = null;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.toastTimer = undefined;
    this.media = new LocalMedia({
      onTrack: (kind, track) => {
        for (const l of this.links.values()) void l.replaceTrack(kind, track);
        this.modes.localChanged();
        this.grid.get(SELF)?.setStream(this.media.stream);
      },
      onChange: () => this.localChanged(),
    });
    /** @type {Signaling|null} */
    this.sig = null;
    this.showModeChoice = wireModeChoice((type, data) => { this.sig?.send(type, data); });
    /** @type {LiveMap|null} */
    this.map = null;
    /** @type {MainLog|null} */
    this.log = null;
    this.selfId = '';
    this.capacity = 0;
    /** @type {ICEServer[]} */
    this.iceServers = [];
    /** @type {RTCIceTransportPolicy} */
    this.icePolicy = 'all';
    /** @type {Map<string, PeerLink>} */
    this.links = new Map();
    this.modes = new MediaModes({
      send: (m) => { this.sig?.send('sfu', m); },
      local: () => ({ audio: this.media.mic, video: this.media.camera, screen: this.media.screen }),
      watchOnly: () => this.watchOnly,
      selfId: () => this.selfId,
      members: () => [...this.members.keys()],
      tile: (id) => this.grid.get(id),
      meshStream: (id) => this.links.get(id)?.remoteStream,
      openLink: (id, initiator) => this.openLink(id, initiator),
      closeLink: (id) => { this.links.get(id)?.close(); this.links.delete(id); },
      showing: (id, stream) => {
        this.speaker.watch(id, stream);
        const tile = this.grid.get(id);
        const via = stream === this.links.get(id)?.remoteStream ? 'mesh' : 'sfu';
        if (tile) tile.el.dataset.via = via; // which path the tile shows (tests read it)
        // Through the SFU there is no link of theirs to tell its state: a playing stream says enough.
        if (via === 'sfu') tile?.setConn('connected');
      },
      onMode: () => showMode(this.i18n, this.modes.mode),
      log: (msg, err) => console.debug(`[sfu] ${msg}`, err ?? ''),
    });
    /** @type {Map<string, Member>} */
    this.members = new Map();
    this.hand = false;
    this.speaking = false;
    this.rejoined = false;
    this.resumes = 0;
    this.selfName = '';
    /** @type {string} which final.* text is shown, once the session is over */
    this.finalKey = '';
    this.finalCode = 0;
    /** @type {Panel|null} */
    this.panel = null;
    this.unread = 0;
    this.grid = new Grid(byId('grid'));
    this.chat = new ChatLog(byId('chat-log'), i18n);
    this.speaker = new SpeakerDetector(
      (id, on) => this.speakingChanged(id, on),
      (id) => { for (const t of this.grid.tiles.values()) t.setActive(t.id === id); },
    );
    this.lobbyHosts = new LobbyHosts({
      i18n,
      send: (type, data) => this.sig?.send(type, data) ?? null,
      onArrived: (name) => this.chat.system(this.i18n.t('waiting.arrived', { name })),
    });
    i18n.onChange(() => this.relabel());
  }

  // ---- before joining -------------------------------------------------

  async prejoin() {
    show('prejoin');
    const name = find(document, '#name', HTMLInputElement);
    if (this.session) {
      // Staff enter under their account's name.
      name.value = cleanName(this.session.user.name || this.session.user.login);
      name.readOnly = true;
      this.note('prejoin.staffName');
    } else {
      try {
        name.value = localStorage.getItem(NAME_KEY) ?? '';
      } catch {
        // no storage
      }
    }
    byId('lobby-cancel').addEventListener('click', () => this.sig?.end(Close.Left, 'cancelled in the lobby'));
    byId('pre-mic').addEventListener('click', () => this.media.setAudio(!this.media.audioOn));
    byId('pre-cam').addEventListener('click', () => this.media.setVideo(!this.media.videoOn));
    byId('join-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.join(name);
    });
    const status = byId('media-status');
    status.hidden = false;
    if (this.watchOnly) {
      this.applyWatchOnly();
      status.dataset.i18n = 'prejoin.watchOnly'; // kept on a language switch
      status.textContent = this.i18n.t('prejoin.watchOnly');
      if (!name.value) name.focus();
      return;
    }
    status.textContent = this.i18n.t('prejoin.loading');
    await this.media.open();
    if (this.watchOnly) {
      this.media.release(); // learnt from "joined" while the devices were opening
      return;
    }
    status.hidden = true;
    const preview = find(document, '#preview', HTMLVideoElement);
    preview.srcObject = this.media.stream;
    void preview.play().catch(() => {});
    this.showMediaError();
    this.relabel();
    if (!name.value) name.focus();
  }

  /** @private */
  showMediaError() {
    const el = byId('media-error');
    const err = this.media.error;
    el.hidden = !err;
    if (err) el.textContent = this.i18n.t(this.i18n.has(`media.${err}`) ? `media.${err}` : 'media.other');
  }

  /**
   * @private
   * @param {HTMLInputElement} input
   */
  join(input) {
    if (this.sig) return; // a double submit
    const name = cleanName(input.value);
    if (!name) {
      input.value = '';
      input.reportValidity();
      return;
    }
    if (!this.session) {
      try {
        localStorage.setItem(NAME_KEY, name);
      } catch {
        // no storage
      }
    }
    this.speaker.enable(); // inside the click: audio contexts need a gesture
    find(document, '#preview', HTMLVideoElement).srcObject = null;
    this.selfName = name;
    if (!this.watchOnly) {
      const self = new Tile(SELF, true, () => {});
      self.setStream(this.media.stream);
      this.grid.add(self);
      this.speaker.watch(SELF, this.media.stream);
    }
    this.wireControls();
    show('room');
    this.localChanged();
    this.startMap();
    this.log = new MainLog({ i18n: this.i18n, auth: this.auth, send: (type, data) => this.sig?.send(type, data) ?? null, name: () => this.selfName,
      annotations: () => [...(this.map?.ann.items.values() ?? [])] });
    void this.log.start();
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.sig = new Signaling({
      url: `${proto}//${location.host}/ws`,
      token: this.auth.token,
      room: this.room,
      name,
      handlers: {
        onJoined: (j) => this.joined(j),
        onMessage: (env) => this.message(env),
        onStatus: (s, attempt) => this.status(s, attempt),
        onFinal: (code, reason) => this.final(code, reason),
        onSessionLost: () => { this.rejoined = true; this.resetPeers(); },
      },
    });
    this.sig.start();
    window.addEventListener('pagehide', () => this.sig?.leave());
    // A page restored from the back-forward cache has a dead session.
    window.addEventListener('pageshow', (ev) => { if (ev.persisted) location.reload(); });
  }

  // ---- signaling ------------------------------------------------------

  /**
   * @private
   * @param {Joined} j
   */
  joined(j) {
    if (this.inLobby || document.body.dataset.view === 'lobby') {
      // Admitted: the lobby gives way to the room.
      this.inLobby = false;
      show('room'); // the header already says "Connecté" (signal.js's status precedes joined)
    }
    this.role = j.role ?? '';
    this.can = Array.isArray(j.can) ? j.can : null;
    // Drawing tools only for those who may draw (an older server says nothing: keep them).
    document.body.dataset.annotate = String(!this.can || this.can.includes('room.annotate'));
    if (j.watch_only && !this.watchOnly) {
      this.watchOnly = true;
      try {
        sessionStorage.setItem(`crisisroom.watch.${this.room}`, '1');
      } catch {
        // no storage: a reload asks for the devices, and gives them back
      }
      this.applyWatchOnly();
    }
    this.updateHostTools();
    this.iceServers = j.ice_servers ?? [];
    this.icePolicy = j.ice_transport_policy === 'relay' ? 'relay' : 'all';
    this.capacity = j.capacity;
    byId('room-title').textContent = j.room;
    if (!j.resumed || j.peer_id !== this.selfId) this.resetPeers(); // before the SFU starts for the new seat
    this.modes.joined(j);
    if (j.resumed && j.peer_id === this.selfId) {
      byId('conn').dataset.resumes = String(++this.resumes);
      this.resumed(j.peers);
    } else {
      this.selfId = j.peer_id;
      // The newcomer offers to everyone already there (in a mesh room).
      for (const p of j.peers) this.addPeer(p, true);
      if (this.rejoined) this.chat.system(this.i18n.t('banner.rejoined'));
      this.rejoined = false;
    }
    this.sendState();
    this.renderPeople();
    // The map's feed rides on this socket: a new socket watches nothing yet.
    this.map?.joined(j);
    this.log?.joined(j);
  }

  /**
   * Our socket came back within the resume window. Members who left meanwhile
   * are dropped, newcomers we missed get an offer, and every existing link
   * gets an ICE restart: our network may have changed under it.
   * @private
   * @param {PeerInfo[]} peers
   */
  resumed(peers) {
    const present = new Set(peers.map((p) => p.id));
    for (const id of [...this.members.keys()]) {
      if (id !== this.selfId && !present.has(id)) this.removePeer(id);
    }
    for (const p of peers) {
      const m = this.members.get(p.id);
      if (!m) {
        this.addPeer(p, true);
        continue;
      }
      this.updatePeer(m, p);
      const link = this.links.get(p.id);
      link?.setIceServers(this.iceServers);
      void link?.restartIce();
    }
  }

  /**
   * @private
   * @param {Envelope} env
   */
  message(env) {
    if (this.map?.handle(env) || this.log?.handle(env)) return;
    const d = env.data ?? {};
    switch (env.type) {
      case 'peer-joined':
        this.addPeer(d, false);
        this.chat.system(this.i18n.t('chat.joined', { name: d.name }));
        this.renderPeople();
        return;
      case 'peer-left': {
        const m = this.members.get(d.id);
        this.removePeer(d.id);
        if (m) this.chat.system(this.i18n.t('chat.left', { name: m.name }));
        this.renderPeople();
        return;
      }
      case 'offer':
      case 'answer':
        void this.linkFor(d.from)?.handleDescription(env.type, d.sdp);
        return;
      case 'candidate':
        void this.linkFor(d.from)?.handleCandidate(d);
        return;
      case 'chat':
        this.chat.message({ name: d.name ?? '', text: d.text ?? '', at: d.at ?? Date.now(), self: d.from === this.selfId });
        if (this.panel !== 'chat' && d.from !== this.selfId) this.setUnread(this.unread + 1);
        return;
      case 'state':
        this.peerState(d);
        return;
      case 'mode':
        this.modes.setMode(d.mode);
        return;
      case 'sfu':
        this.modes.signal(d);
        return;
      case 'lobby':
        if (d.state === 'waiting') {
          this.inLobby = true;
          show('lobby');
          setConn(this.i18n, 'waiting'); // connected, and waiting: not "Connexion…" for as long as it takes
        }
        return;
      case 'lobby-list':
        this.lobbyHosts.update(d.waiting ?? []);
        return;
      case 'error':
        // Refused or revoked: the server closes next (4507, 4508), but the
        // close frame may be lost behind a proxy; either way it is final.
        if (d.code === 'refused') this.sig?.end(Close.Refused, 'refused');
        else if (d.code === 'revoked') this.sig?.end(Close.Revoked, 'revoked');
        else if (d.code === 'forbidden') this.toast(this.i18n.t('toast.forbidden'));
        else if (d.code === 'rate_limited') this.chat.system(this.i18n.t('chat.rateLimited'));
        console.warn('server error', d.code, d.message);
    }
  }

  /**
   * @private
   * @param {PeerState} s
   */
  peerState(s) {
    const m = s.from ? this.members.get(s.from) : undefined;
    if (!m) return;
    if (s.hand && !m.state.hand) this.chat.system(this.i18n.t('chat.hand', { name: m.name }));
    const renderList = m.state.hand !== s.hand || m.state.audio !== s.audio || m.state.video !== s.video || m.state.screen !== s.screen;
    m.state = s;
    this.grid.get(m.id)?.setState(s);
    if (renderList) this.renderPeople();
  }

  /**
   * @private
   * @param {import('./signal.js').SignalStatus} s
   * @param {number} attempt
   */
  status(s, attempt) {
    this.map?.connection(s);
    this.log?.connection(s);
    setConn(this.i18n, s);
    const banner = byId('banner');
    banner.hidden = s !== 'reconnecting';
    if (s === 'reconnecting') banner.textContent = this.i18n.t('banner.reconnecting', { n: attempt });
  }

  /**
   * The session is over: say why, free the devices, offer the way back.
   * @private
   * @param {number} code
   * @param {string} reason
   */
  final(code, reason) {
    this.resetPeers();
    this.modes.reset();
    this.grid.clear();
    this.speaker.close();
    this.media.stopAll();
    this.lobbyHosts.clear();
    this.finalKey = showFinal(this.i18n, code, this.inLobby, !this.auth.token);
    this.finalCode = code;
    this.inLobby = false;
    byId('banner').hidden = true;
    show('final');
    if (reason) console.info('session ended', code, reason);
  }

  // ---- the map --------------------------------------------------------

  /**
   * The live map shares the signaling socket (one connection per page).
   * It shows beside the video on wide screens and under a tab on phones;
   * without a territory the room is video only.
   * @private
   */
  startMap() {
    this.map = new LiveMap({
      i18n: this.i18n,
      auth: this.auth,
      send: (type, data) => this.sig?.send(type, data) ?? null,
      selfId: () => this.selfId,
      nameOf: (id) => (id === this.selfId ? this.selfName : this.members.get(id)?.name ?? '…'),
    });
    byId('tab-video').addEventListener('click', () => this.setTab('video'));
    byId('tab-map').addEventListener('click', () => this.setTab('map'));
    void this.map.start().then((on) => { byId('view-room').dataset.map = on ? 'on' : 'off'; });
  }

  /**
   * @private
   * @param {'video'|'map'} tab
   */
  setTab(tab) {
    byId('view-room').dataset.tab = tab;
    byId('tab-video').setAttribute('aria-selected', String(tab === 'video'));
    byId('tab-map').setAttribute('aria-selected', String(tab === 'map'));
    if (tab === 'map') this.map?.resized();
  }

  // ---- peers ----------------------------------------------------------

  /**
   * @private
   * @param {PeerInfo} p
   * @param {boolean} initiator
   */
  addPeer(p, initiator) {
    if (!p || !p.id || p.id === this.selfId) return;
    const known = this.members.get(p.id);
    if (known) {
      // Their offer raced their peer-joined: now we know who they are.
      this.updatePeer(known, p);
      return;
    }
    /** @type {Member} */
    const m = { id: p.id, name: p.name, role: p.role, state: p.state, self: false, conn: 'new' };
    this.members.set(p.id, m);
    const tile = new Tile(p.id, false, () => { byId('sound').hidden = false; });
    tile.setName(p.name);
    tile.setState(p.state);
    tile.setConn('new');
    this.grid.add(tile);
    if (this.modes.mode === 'mesh') this.openLink(p.id, initiator);
  }

  /**
   * The mesh link with a member, if there is none yet (in SFU mode there
   * is none: the server forwards).
   * @private
   * @param {string} id
   * @param {boolean} initiator
   */
  openLink(id, initiator) {
    const m = this.members.get(id);
    const tile = this.grid.get(id);
    if (!m || !tile || this.links.has(id)) return;
    const link = new PeerLink({
      id,
      selfId: this.selfId,
      iceServers: this.iceServers,
      iceTransportPolicy: this.icePolicy,
      local: () => this.media.tracks(),
      send: (type, data) => { this.sig?.send(type, data); },
      onStream: (stream) => this.modes.meshStream(id, stream),
      onConnState: (st) => {
        const changed = m.conn !== st;
        m.conn = st;
        tile.setConn(st);
        if (changed) this.renderPeople();
      },
      onNegotiated: (n) => { tile.el.dataset.negotiations = String(n); },
      recvOnly: () => this.watchOnly,
      log: (msg, err) => console.debug(`[peer ${id}] ${msg}`, err ?? ''),
    });
    this.links.set(id, link);
    if (initiator) link.start();
  }

  /**
   * @private
   * @param {Member} m
   * @param {PeerInfo} p
   */
  updatePeer(m, p) {
    m.name = p.name;
    m.role = p.role;
    m.state = p.state;
    const tile = this.grid.get(p.id);
    tile?.setName(p.name);
    tile?.setState(p.state);
  }

  /**
   * The link to a member, made on their first offer when we had no link yet
   * (their peer-joined raced our resume).
   * @private
   * @param {string} from
   */
  linkFor(from) {
    if (!from) return undefined;
    if (!this.members.has(from)) {
      this.addPeer({ id: from, name: '…', role: 'participant', state: { audio: true, video: true, screen: false, hand: false, speaking: false } }, false);
      this.renderPeople();
    }
    this.openLink(from, false);
    return this.links.get(from);
  }

  /**
   * @private
   * @param {string} id
   */
  removePeer(id) {
    this.links.get(id)?.close();
    this.links.delete(id);
    this.modes.forget(id);
    this.speaker.unwatch(id);
    this.grid.remove(id);
    this.members.delete(id);
  }

  /** @private */
  resetPeers() {
    for (const id of [...this.links.keys()]) this.removePeer(id);
    this.members.clear();
    this.renderPeople();
  }

  // ---- our own state --------------------------------------------------

  /** @private @returns {PeerState} */
  localState() {
    return {
      audio: this.media.audioOn && !!this.media.mic,
      video: this.media.videoOn && !!this.media.camera,
      screen: !!this.media.screen,
      hand: this.hand,
      speaking: this.speaking,
    };
  }

  /** @private */
  sendState() {
    // Not before "joined": a guest waiting in the lobby is in no room yet.
    if (this.sig?.ready) this.sig.send('state', this.localState());
  }

  /** @private */
  localChanged() {
    const s = this.localState();
    this.grid.get(SELF)?.setState(s);
    this.relabel();
    this.sendState();
    this.renderPeople();
  }

  /**
   * @private
   * @param {string} id
   * @param {boolean} on
   */
  speakingChanged(id, on) {
    this.grid.get(id)?.setSpeaking(on);
    if (id === SELF) {
      this.speaking = on;
      this.sendState();
    }
  }

  /** @private */
  renderPeople() {
    if (!this.selfName) return;
    /** @type {Member[]} */
    const all = [{ id: this.selfId || SELF, name: this.selfName, role: '', state: this.localState(), self: true }, ...this.members.values()];
    renderPeople(byId('people'), all, this.i18n);
    byId('count').textContent = this.capacity ? this.i18n.t('people.count', { n: all.length, max: this.capacity }) : String(all.length);
  }

  // ---- controls -------------------------------------------------------

  /** @private */
  wireControls() {
    byId('ctl-mic').addEventListener('click', () => this.media.setAudio(!this.media.audioOn));
    byId('ctl-cam').addEventListener('click', () => this.media.setVideo(!this.media.videoOn));
    const screen = byId('ctl-screen');
    screen.hidden = !LocalMedia.canShareScreen();
    screen.addEventListener('click', () => this.toggleScreen());
    byId('ctl-hand').addEventListener('click', () => { this.hand = !this.hand; this.localChanged(); });
    byId('ctl-people').addEventListener('click', () => this.openPanel(this.panel === 'people' ? null : 'people'));
    byId('ctl-chat').addEventListener('click', () => this.openPanel(this.panel === 'chat' ? null : 'chat'));
    byId('tab-people').addEventListener('click', () => this.openPanel('people'));
    byId('tab-chat').addEventListener('click', () => this.openPanel('chat'));
    byId('ctl-log').addEventListener('click', () => this.openPanel(this.panel === 'log' ? null : 'log'));
    byId('tab-log').addEventListener('click', () => this.openPanel('log'));
    byId('tab-guests').addEventListener('click', () => this.openPanel('guests'));
    byId('guests-open').addEventListener('click', () => this.openPanel('guests'));
    byId('side-close').addEventListener('click', () => this.openPanel(null));
    byId('ctl-leave').addEventListener('click', () => this.sig?.leave());
    byId('sound').addEventListener('click', () => {
      for (const t of this.grid.tiles.values()) {
        if (!t.self) {
          t.video.muted = false;
          void t.video.play().catch(() => {});
        }
      }
      byId('sound').hidden = true;
    });
    const input = find(document, '#chat-input', HTMLInputElement);
    byId('chat-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      // The server echoes our message with its time; it shows up then.
      if (this.sig?.send('chat', { text }) == null) {
        this.chat.system(this.i18n.t('chat.failed'));
        return;
      }
      input.value = '';
    });
  }

  /** @private */
  async toggleScreen() {
    if (this.media.screen) {
      this.media.stopScreen();
      return;
    }
    try {
      await this.media.startScreen();
    } catch (err) {
      // Cancelling the picker is not an error worth a message.
      if (!(err instanceof DOMException && err.name === 'NotAllowedError')) this.chat.system(this.i18n.t('media.screenFailed'));
    }
  }

  /**
   * @private
   * @param {Panel|null} panel
   */
  openPanel(panel) {
    if (panel === 'guests' && !this.guests) panel = 'people';
    this.panel = panel;
    showPanel(panel);
    if (panel === 'guests') this.guests?.open();
    if (panel === 'chat') {
      this.setUnread(0);
      // On touch screens focusing would pop the keyboard over the chat.
      if (matchMedia('(pointer: fine)').matches) find(document, '#chat-input', HTMLInputElement).focus();
    }
  }

  /**
   * @private
   * @param {number} n
   */
  setUnread(n) {
    this.unread = n;
    showUnread(n);
  }

  /** Texts that depend on state, redone on every change and language switch. @private */
  relabel() {
    const s = this.localState();
    /** @type {Array<[string, boolean, string, string]>} */
    const toggles = [
      ['pre-mic', this.media.audioOn, 'ctl.micOn', 'ctl.micOff'],
      ['pre-cam', this.media.videoOn, 'ctl.camOn', 'ctl.camOff'],
      ['ctl-mic', this.media.audioOn, 'ctl.micOn', 'ctl.micOff'],
      ['ctl-cam', this.media.videoOn, 'ctl.camOn', 'ctl.camOff'],
      ['ctl-screen', s.screen, 'ctl.screenStop', 'ctl.screenStart'],
      ['ctl-hand', s.hand, 'ctl.handLower', 'ctl.handRaise'],
    ];
    for (const [id, on, onKey, offKey] of toggles) {
      const b = byId(id);
      b.setAttribute('aria-pressed', String(on));
      const label = this.i18n.t(on ? onKey : offKey);
      b.setAttribute('aria-label', label);
      b.title = label;
    }
    byId('preview-off').hidden = this.media.videoOn && !!this.media.camera;
    this.grid.get(SELF)?.setName(this.selfName ? `${this.selfName} ${this.i18n.t('people.you')}` : this.i18n.t('tile.you'));
    if (this.sig) this.status(this.sig.status, this.sig.attempt);
    this.showMediaError();
    this.renderPeople();
    this.relabelFinal();
    showMode(this.i18n, this.modes.mode);
  }

  /** @private */
  relabelFinal() {
    if (this.finalKey) relabelFinal(this.i18n, this.finalKey, this.finalCode);
  }

  // ---- access: watch only, tools of those who run the room, notices ----

  /**
   * A watch-only member gives the devices back and loses the sending and
   * drawing controls (CSS hides them from body[data-watch]); new links
   * negotiate receive-only.
   * @private
   */
  applyWatchOnly() {
    document.body.dataset.watch = 'true';
    this.media.release();
    this.grid.remove(SELF);
    this.speaker.unwatch(SELF);
    byId('pre-mic').hidden = true;
    byId('pre-cam').hidden = true;
  }

  /**
   * Guest links belong to those who run the room (the server decides; this
   * only keeps useless buttons away).
   * @private
   */
  updateHostTools() {
    const host = isHostRole(this.role) || !!this.session?.user.admin || !!this.can?.includes('room.admit');
    this.showModeChoice(!!this.can?.includes('room.mode'));
    if (host && !this.guests) this.guests = new GuestLinks({ i18n: this.i18n, auth: this.auth, room: this.room });
    byId('tab-guests').hidden = !host;
    byId('guests-open').hidden = !host;
    if (!host && this.panel === 'guests') this.openPanel(null);
  }

  /**
   * A short notice that goes away by itself.
   * @private
   * @param {string} text  already translated
   */
  toast(text) {
    const el = byId('toast');
    el.textContent = text;
    el.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
  }

  /**
   * @private
   * @param {string} key
   */
  note(key) {
    const el = byId('prejoin-note');
    el.dataset.i18n = key;
    el.textContent = this.i18n.t(key);
    el.hidden = false;
  }
}
