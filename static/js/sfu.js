// The room's media through the server's selective forwarding unit (SFU),
// and the move between it and the peer-to-peer mesh.
//
// SfuSession is the two connections with the server: "up", which we offer
// and publish on (microphone, camera, and the screen as a second video
// while sharing), and "down", which the server offers and on which it
// forwards the others' tracks. A forwarded track's stream id is its
// publisher's member id; its track id says "audio", "video" or "screen".
//
// MediaModes follows the room's mode without a black tile: into the SFU it
// publishes first, and swaps a member's tile (and drops the mesh link with
// them) only once their SFU video plays; back to the mesh it does the same
// the other way, and closes the SFU once every mesh link plays.

/**
 * @typedef {import('./protocol.js').ICEServer} ICEServer
 * @typedef {import('./protocol.js').Joined} Joined
 * @typedef {import('./ui.js').Tile} Tile
 * @typedef {'mesh'|'sfu'} Mode
 *
 * @typedef {{candidate: string, sdpMid?: string|null, sdpMLineIndex?: number|null}} SfuCandidate
 * @typedef {{pc: 'up'|'down', kind: 'offer'|'answer'|'candidate', sdp?: string, candidate?: SfuCandidate|null}} SfuMessage
 * @typedef {{audio: MediaStreamTrack|null, video: MediaStreamTrack|null, screen: MediaStreamTrack|null}} Published
 *   one member's tracks: ours on up, a publisher's on down
 *
 * @typedef {object} SessionOptions
 * @property {ICEServer[]} iceServers
 * @property {RTCIceTransportPolicy} iceTransportPolicy
 * @property {boolean} publish  false for a watch-only member: no up connection
 * @property {() => Published} local  what we publish now
 * @property {(m: SfuMessage) => void} send  to the signaling socket
 * @property {(publisher: string, tracks: Published) => void} onTracks  a publisher's forwarded tracks changed
 * @property {(msg: string, err?: unknown) => void} log
 */

/** A broken up connection waits this long before its ICE restart: ICE
 * often heals a brief loss by itself. */
const RESTART_AFTER_MS = 2000;
/** How long the mesh and the SFU overlap at most after a switch (the
 * server ends the SFU connections 10 s after a switch back anyway). */
const OVERLAP_MS = 10000;

export class SfuSession {
  /** @param {SessionOptions} o */
  constructor(o) {
    this.o = o;
    this.closed = false;
    /** @type {RTCPeerConnection|null} */
    this.up = null;
    /** @type {RTCPeerConnection|null} */
    this.down = null;
    /** @type {Record<'up'|'down', RTCIceCandidateInit[]>} remote candidates before their description */
    this.pending = { up: [], down: [] };
    /** whether up must be offered again once the current offer is answered */
    this.again = false;
    /** @type {WeakMap<MediaStreamTrack, {publisher: string, role: keyof Published}>} what each down track carries */
    this.meta = new WeakMap();
    /** @type {Set<string>} publishers last reported with tracks */
    this.known = new Set();
    /** the down connection's messages, one at a time: offers must not overlap */
    this.queue = Promise.resolve();
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.restartTimer = undefined;
  }

  /** @returns {RTCConfiguration} */
  config() {
    return { iceServers: this.o.iceServers, iceTransportPolicy: this.o.iceTransportPolicy, bundlePolicy: 'max-bundle' };
  }

  /** Opens the up connection and offers our tracks (nothing when watch-only). */
  start() {
    if (!this.o.publish || this.up || this.closed) return;
    const pc = new RTCPeerConnection(this.config());
    this.up = pc;
    this.trickle(pc, 'up');
    pc.onconnectionstatechange = () => this.watchUp();
    const l = this.o.local();
    pc.addTransceiver(l.audio ?? 'audio', { direction: 'sendonly' });
    pc.addTransceiver(l.video ?? 'video', { direction: 'sendonly' });
    if (l.screen) pc.addTransceiver(l.screen, { direction: 'sendonly' });
    void this.offerUp(false);
  }

  /**
   * Our tracks changed (device, screen share): swap them in place, and
   * renegotiate only when the screen's second video comes or goes.
   */
  async localChanged() {
    const pc = this.up;
    if (!pc || this.closed) return;
    const l = this.o.local();
    const [audio, video, screen] = pc.getTransceivers();
    try {
      if (audio && audio.sender.track !== l.audio) await audio.sender.replaceTrack(l.audio);
      if (video && video.sender.track !== l.video) await video.sender.replaceTrack(l.video);
    } catch (err) {
      this.o.log('replaceTrack on up failed', err);
    }
    if (!screen && !l.screen) return;
    if (!screen && l.screen) {
      pc.addTransceiver(l.screen, { direction: 'sendonly' });
    } else if (screen) {
      if (screen.sender.track !== l.screen) await screen.sender.replaceTrack(l.screen).catch((err) => this.o.log('replaceTrack (screen) failed', err));
      const dir = l.screen ? 'sendonly' : 'inactive';
      if (screen.direction === dir) return;
      screen.direction = dir;
    }
    await this.offerUp(false);
  }

  /**
   * Our socket came back: fresh TURN credentials for the next restart, and
   * an ICE restart of up if it broke meanwhile. Down is the server's to
   * restart.
   * @param {ICEServer[]} servers
   */
  resumed(servers) {
    this.o.iceServers = servers;
    for (const pc of [this.up, this.down]) {
      try {
        pc?.setConfiguration({ ...pc.getConfiguration(), iceServers: servers });
      } catch (err) {
        this.o.log('setConfiguration failed', err);
      }
    }
    const st = this.up?.connectionState;
    if (st === 'failed' || st === 'disconnected') void this.offerUp(true);
  }

  /** @param {SfuMessage} m */
  handle(m) {
    if (this.closed || !m) return;
    if (m.kind === 'candidate') {
      void this.candidate(m.pc, m.candidate ?? null);
    } else if (m.pc === 'up' && m.kind === 'answer' && typeof m.sdp === 'string') {
      void this.answered(m.sdp);
    } else if (m.pc === 'down' && m.kind === 'offer' && typeof m.sdp === 'string') {
      const sdp = m.sdp;
      this.queue = this.queue.then(() => this.answerDown(sdp));
    } else {
      this.o.log(`unexpected sfu message ${m.pc} ${m.kind}`);
    }
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.restartTimer);
    this.up?.close();
    this.down?.close();
    for (const p of this.known) this.o.onTracks(p, { audio: null, video: null, screen: null });
    this.known.clear();
  }

  /**
   * @private
   * @param {RTCPeerConnection} pc
   * @param {'up'|'down'} which
   */
  trickle(pc, which) {
    pc.onicecandidate = (ev) => {
      const c = ev.candidate;
      if (!c || this.closed) return; // end-of-candidates is implicit
      this.o.send({ pc: which, kind: 'candidate', candidate: { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } });
    };
  }

  /**
   * @private
   * @param {boolean} iceRestart
   */
  async offerUp(iceRestart) {
    const pc = this.up;
    if (!pc || this.closed) return;
    if (pc.signalingState !== 'stable') {
      // One offer at a time: say it again once this one is answered.
      this.again = true;
      return;
    }
    try {
      await pc.setLocalDescription(await pc.createOffer({ iceRestart }));
      const sdp = pc.localDescription?.sdp;
      if (sdp && !this.closed) this.o.send({ pc: 'up', kind: 'offer', sdp });
    } catch (err) {
      this.o.log('up offer failed', err);
    }
  }

  /**
   * @private
   * @param {string} sdp
   */
  async answered(sdp) {
    const pc = this.up;
    if (!pc || pc.signalingState !== 'have-local-offer') return; // stale
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp });
      await this.flush('up', pc);
    } catch (err) {
      this.o.log('up answer refused', err);
    }
    if (this.again) {
      this.again = false;
      await this.offerUp(false);
    }
  }

  /**
   * @private
   * @param {string} sdp
   */
  async answerDown(sdp) {
    if (this.closed) return;
    let pc = this.down;
    if (!pc) {
      pc = new RTCPeerConnection(this.config());
      this.down = pc;
      this.trickle(pc, 'down');
      pc.ontrack = (ev) => this.track(ev);
    }
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription();
      const answer = pc.localDescription?.sdp;
      if (answer && !this.closed) this.o.send({ pc: 'down', kind: 'answer', sdp: answer });
      await this.flush('down', pc);
    } catch (err) {
      this.o.log('down offer refused', err);
    }
    this.report();
  }

  /**
   * @private
   * @param {'up'|'down'} which
   * @param {SfuCandidate|null} c
   */
  async candidate(which, c) {
    if (!c || !c.candidate) return;
    /** @type {RTCIceCandidateInit} */
    const init = { candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null };
    const pc = which === 'up' ? this.up : this.down;
    if (!pc || !pc.remoteDescription) {
      this.pending[which].push(init);
      return;
    }
    await pc.addIceCandidate(init).catch((err) => this.o.log(`${which} candidate refused`, err));
  }

  /**
   * @private
   * @param {'up'|'down'} which
   * @param {RTCPeerConnection} pc
   */
  async flush(which, pc) {
    const queued = this.pending[which];
    this.pending[which] = [];
    for (const c of queued) await pc.addIceCandidate(c).catch((err) => this.o.log('queued candidate refused', err));
  }

  /**
   * Records who a forwarded track belongs to. A reused transceiver fires
   * again with the same track object for its new publisher.
   * @private
   * @param {RTCTrackEvent} ev
   */
  track(ev) {
    const t = ev.track;
    const publisher = ev.streams[0]?.id;
    if (!publisher) return;
    /** @type {keyof Published} */
    let role = t.kind === 'audio' ? 'audio' : t.id === 'screen' ? 'screen' : 'video';
    if (t.kind === 'video' && t.id !== 'video' && t.id !== 'screen') {
      // A browser that makes up its own track ids: a publisher's second video is its screen.
      const other = this.receiving().some((r) => r !== t && r.kind === 'video' && this.meta.get(r)?.publisher === publisher);
      role = other ? 'screen' : 'video';
    }
    this.meta.set(t, { publisher, role });
  }

  /** @private @returns {MediaStreamTrack[]} the down tracks the server sends now */
  receiving() {
    if (!this.down) return [];
    return this.down.getTransceivers()
      .filter((tr) => tr.currentDirection === 'recvonly' || tr.currentDirection === 'sendrecv')
      .map((tr) => tr.receiver.track);
  }

  /**
   * Tells each publisher's current tracks, after every down negotiation
   * (tracks come, go, or move between transceivers).
   * @private
   */
  report() {
    if (this.closed) return;
    /** @type {Map<string, Published>} */
    const now = new Map();
    for (const t of this.receiving()) {
      const m = this.meta.get(t);
      if (!m) continue;
      const p = now.get(m.publisher) ?? { audio: null, video: null, screen: null };
      p[m.role] = t;
      now.set(m.publisher, p);
    }
    for (const gone of this.known) {
      if (!now.has(gone)) this.o.onTracks(gone, { audio: null, video: null, screen: null });
    }
    this.known = new Set(now.keys());
    for (const [p, tracks] of now) this.o.onTracks(p, tracks);
  }

  /** @private */
  watchUp() {
    const pc = this.up;
    if (!pc || this.closed) return;
    if (pc.connectionState === 'connected') {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
      return;
    }
    if (pc.connectionState !== 'failed' || this.restartTimer) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closed || pc.connectionState === 'connected') return;
      this.o.log('up failed: ICE restart');
      void this.offerUp(true);
    }, RESTART_AFTER_MS);
  }
}

/**
 * What MediaModes needs of the room page.
 * @typedef {object} ModesHooks
 * @property {(m: SfuMessage) => void} send
 * @property {() => Published} local
 * @property {() => boolean} watchOnly
 * @property {() => string} selfId
 * @property {() => string[]} members  the other members' ids
 * @property {(id: string) => Tile|undefined} tile
 * @property {(id: string) => MediaStream|undefined} meshStream  the mesh link's stream, when there is a link
 * @property {(id: string, initiator: boolean) => void} openLink
 * @property {(id: string) => void} closeLink
 * @property {(id: string, stream: MediaStream) => void} showing  a tile now shows this stream (the speaker detector follows)
 * @property {(mode: Mode) => void} onMode
 * @property {(msg: string, err?: unknown) => void} log
 */

export class MediaModes {
  /** @param {ModesHooks} h */
  constructor(h) {
    this.h = h;
    /** @type {Mode} */
    this.mode = 'mesh';
    /** @type {SfuSession|null} */
    this.sfu = null;
    /** @type {ICEServer[]} */
    this.iceServers = [];
    /** @type {RTCIceTransportPolicy} */
    this.icePolicy = 'all';
    /** @type {Map<string, {stream: MediaStream, video: boolean}>} each publisher's SFU stream, as a tile shows it */
    this.views = new Map();
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.overlapTimer = undefined;
  }

  /**
   * A "joined": a fresh seat starts in the room's mode with no mesh to
   * leave; a resumed one keeps its SFU connections.
   * @param {Joined} j
   */
  joined(j) {
    this.iceServers = j.ice_servers ?? [];
    this.icePolicy = j.ice_transport_policy === 'relay' ? 'relay' : 'all';
    const mode = j.mode === 'sfu' ? 'sfu' : 'mesh';
    if (j.resumed && this.sfu) {
      this.sfu.resumed(this.iceServers);
      if (mode !== this.mode) this.setMode(mode);
      return;
    }
    this.reset();
    this.mode = mode;
    this.h.onMode(mode);
    if (mode === 'sfu') this.session().start();
  }

  /**
   * The room changed mode under us.
   * @param {string} next
   */
  setMode(next) {
    const mode = next === 'sfu' ? 'sfu' : 'mesh';
    if (mode === this.mode) return;
    this.mode = mode;
    this.h.onMode(mode);
    clearTimeout(this.overlapTimer);
    if (mode === 'sfu') {
      // Connections left from a previous SFU period are ended: the server
      // makes our attachment afresh. Then publish first; each member's
      // tile moves over once its SFU video plays.
      this.sfu?.close();
      this.sfu = null;
      this.session().start();
      this.overlapTimer = setTimeout(() => this.finishSfu(), OVERLAP_MS);
      return;
    }
    // Back to the mesh: the lower id offers, so that only one side does.
    const self = this.h.selfId();
    for (const id of this.h.members()) this.h.openLink(id, self < id);
    this.overlapTimer = setTimeout(() => this.closeSfu(), OVERLAP_MS);
  }

  /** @param {SfuMessage} m */
  signal(m) {
    this.sfu?.handle(m);
  }

  /** Our own tracks changed. */
  localChanged() {
    void this.sfu?.localChanged();
  }

  /**
   * A mesh link's stream gained a track: shown at once when the tile has
   * nothing better, else once it plays (coming back from the SFU).
   * @param {string} id
   * @param {MediaStream} stream
   */
  meshStream(id, stream) {
    const tile = this.h.tile(id);
    if (!tile || this.mode !== 'mesh') return;
    const view = this.views.get(id);
    if (!view || tile.stream !== view.stream) {
      tile.setStream(stream);
      this.h.showing(id, stream);
      return;
    }
    // Its audio comes first: keep the SFU picture until the mesh video is there.
    if (stream.getVideoTracks().length === 0) return;
    void tile.swapStream(stream).then((ok) => {
      if (!ok || this.mode !== 'mesh') return;
      this.h.showing(id, stream);
      if (this.h.members().every((m) => this.h.tile(m)?.stream === this.h.meshStream(m))) this.closeSfu();
    });
  }

  /**
   * A member left: forget their SFU stream.
   * @param {string} id
   */
  forget(id) {
    this.views.delete(id);
  }

  /** Ends the SFU side (a fresh join, the session's end). */
  reset() {
    clearTimeout(this.overlapTimer);
    this.sfu?.close();
    this.sfu = null;
    this.views.clear();
  }

  /** @private */
  session() {
    if (!this.sfu) {
      this.sfu = new SfuSession({
        iceServers: this.iceServers,
        iceTransportPolicy: this.icePolicy,
        publish: !this.h.watchOnly(),
        local: () => this.h.local(),
        send: (m) => this.h.send(m),
        onTracks: (p, t) => this.tracks(p, t),
        log: (msg, err) => this.h.log(msg, err),
      });
    }
    return this.sfu;
  }

  /**
   * A publisher's forwarded tracks changed: keep one stream per publisher
   * (its audio and its screen, else its camera) so the tile never reloads.
   * @private
   * @param {string} id
   * @param {Published} t
   */
  tracks(id, t) {
    if (id === this.h.selfId()) return;
    let view = this.views.get(id);
    if (!view) {
      view = { stream: new MediaStream(), video: false };
      this.views.set(id, view);
    }
    const want = [t.audio, t.screen ?? t.video].filter((x) => x !== null);
    for (const old of view.stream.getTracks()) if (!want.includes(old)) view.stream.removeTrack(old);
    for (const nt of want) if (!view.stream.getTracks().includes(nt)) view.stream.addTrack(nt);
    view.video = !!(t.video || t.screen);
    this.toSfu(id);
  }

  /**
   * Moves a member's tile to its SFU stream once that plays, then drops
   * the mesh link with them.
   * @private
   * @param {string} id
   */
  toSfu(id) {
    const view = this.views.get(id);
    const tile = this.h.tile(id);
    if (this.mode !== 'sfu' || !view || !tile || !view.video || tile.stream === view.stream) return;
    void tile.swapStream(view.stream).then((ok) => {
      if (!ok || this.mode !== 'sfu' || tile.stream !== view.stream) return;
      this.h.showing(id, view.stream);
      this.h.closeLink(id);
    });
  }

  /**
   * The overlap into the SFU is over: members who never sent video there
   * (watch-only, no camera) lose their mesh link all the same.
   * @private
   */
  finishSfu() {
    if (this.mode !== 'sfu') return;
    for (const id of this.h.members()) {
      const view = this.views.get(id);
      const tile = this.h.tile(id);
      if (view && tile && tile.stream !== view.stream) {
        tile.setStream(view.stream);
        this.h.showing(id, view.stream);
      }
      this.h.closeLink(id);
    }
  }

  /** @private */
  closeSfu() {
    if (this.mode !== 'mesh') return;
    clearTimeout(this.overlapTimer);
    this.sfu?.close();
    this.sfu = null;
    // Tiles still on an SFU stream take their mesh one, playing or not.
    for (const id of this.h.members()) {
      const s = this.h.meshStream(id);
      const tile = this.h.tile(id);
      if (s && tile && tile.stream !== s) {
        tile.setStream(s);
        this.h.showing(id, s);
      }
    }
    this.views.clear();
  }
}
