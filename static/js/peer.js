// One RTCPeerConnection per remote member, negotiated with the "perfect
// negotiation" pattern: either side may offer at any time (ICE restarts,
// resumes), and when both do at once the polite side yields. Polite is the
// side whose peer id is lexicographically larger, so both ends agree without
// talking about it.

/**
 * @typedef {import('./protocol.js').ICEServer} ICEServer
 * @typedef {import('./protocol.js').CandidateMessage} CandidateMessage
 *
 * @typedef {object} LinkOptions
 * @property {string} id            the remote member
 * @property {string} selfId        our member id
 * @property {ICEServer[]} iceServers
 * @property {RTCIceTransportPolicy} iceTransportPolicy  "relay" when the server wants media through TURN only
 * @property {() => {audio: MediaStreamTrack|null, video: MediaStreamTrack|null, stream: MediaStream}} local
 * @property {(type: string, data: any) => void} send   to the signaling socket
 * @property {(stream: MediaStream) => void} onStream   the remote stream gained a track
 * @property {(state: RTCPeerConnectionState) => void} onConnState
 * @property {(count: number) => void} onNegotiated  an offer/answer exchange completed
 * @property {(msg: string, err?: unknown) => void} log
 * @property {() => boolean} [recvOnly]  a watch-only member: receive, never send
 */

/** How long a connection may stay disconnected or failed before we restart ICE.
 * Shorter than this and a brief Wi-Fi hiccup, which ICE heals alone, would
 * cost a renegotiation. */
const RESTART_AFTER_MS = 2000;
/** An offer left unanswered this long is sent again (it can be lost while
 * the other side's socket is being resumed, or ignored in a glare). */
const OFFER_RESEND_MS = 4000;

export class PeerLink {
  /** @param {LinkOptions} o */
  constructor(o) {
    this.o = o;
    this.id = o.id;
    this.polite = o.selfId > o.id;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.closed = false;
    /** @type {RTCIceCandidateInit[]} candidates that arrived before the offer they belong to */
    this.pendingCandidates = [];
    this.remoteStream = new MediaStream();
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.restartTimer = undefined;
    this.restartDelay = RESTART_AFTER_MS;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.resendTimer = undefined;
    this.resendDelay = OFFER_RESEND_MS;
    /** Completed offer/answer exchanges, shown on the tile: it is how one
     * sees (and the browser test checks) that an ICE restart went through. */
    this.negotiations = 0;

    const pc = new RTCPeerConnection({ iceServers: o.iceServers, iceTransportPolicy: o.iceTransportPolicy, bundlePolicy: 'max-bundle' });
    this.pc = pc;
    pc.onicecandidate = (ev) => {
      if (!ev.candidate) return; // end-of-candidates is implicit for us
      const c = ev.candidate;
      this.o.send('candidate', { to: this.id, candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex });
    };
    pc.onnegotiationneeded = () => { void this.offer(false); };
    pc.ontrack = (ev) => this.addRemoteTrack(ev.track);
    pc.onconnectionstatechange = () => this.watch();
    pc.oniceconnectionstatechange = () => this.watch();
    pc.onsignalingstatechange = () => {
      if (pc.signalingState === 'stable') this.stopResend();
    };
  }

  /**
   * Makes this side the offerer: adds one audio and one video transceiver
   * carrying our tracks. Adding them fires negotiationneeded, which offers.
   */
  start() {
    this.ensureTransceivers();
  }

  /**
   * Takes the ICE servers of a new "joined": TURN credentials are per
   * session and short-lived, and the next ICE restart should use fresh ones.
   * @param {ICEServer[]} servers
   */
  setIceServers(servers) {
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers: servers });
    } catch (err) {
      this.o.log('setConfiguration failed', err);
    }
  }

  /** Sends a fresh offer with new ICE credentials (after a resume or a failure). */
  async restartIce() {
    if (this.closed) return;
    const pc = this.pc;
    try {
      if (pc.signalingState === 'have-local-offer') {
        // Our previous offer may never have arrived; replace it.
        await pc.setLocalDescription({ type: 'rollback' });
      }
    } catch (err) {
      this.o.log('rollback failed', err);
    }
    if (pc.signalingState !== 'stable') return; // an offer from them is being answered: it will do
    this.ensureTransceivers();
    await this.offer(true);
  }

  /**
   * @param {'offer'|'answer'} type
   * @param {string} sdp
   */
  async handleDescription(type, sdp) {
    if (this.closed) return;
    const pc = this.pc;
    const collision = type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) {
      this.o.log(`glare with ${this.id}: ignoring their offer (impolite)`);
      // Their offer crossing ours means they are reachable now, but ours may
      // have been lost while their socket was away (after a resume, relays
      // to a member without a socket are dropped). Say it again: a polite
      // side that already answered it just answers the copy identically.
      const mine = pc.localDescription;
      if (!this.makingOffer && pc.signalingState === 'have-local-offer' && mine) {
        this.o.send('offer', { to: this.id, sdp: mine.sdp });
      }
      return;
    }
    try {
      if (type === 'answer' && pc.signalingState !== 'have-local-offer') {
        return; // a stale answer to an offer we rolled back
      }
      await pc.setRemoteDescription({ type, sdp }); // rolls back our offer if polite
      if (type === 'offer') {
        await this.attachLocal();
        await pc.setLocalDescription();
        const answer = pc.localDescription;
        if (answer) this.o.send('answer', { to: this.id, sdp: answer.sdp });
      }
      this.o.onNegotiated(++this.negotiations);
      await this.flushCandidates();
    } catch (err) {
      this.o.log(`applying ${type} from ${this.id} failed`, err);
    }
  }

  /** @param {CandidateMessage} m */
  async handleCandidate(m) {
    if (this.closed) return;
    /** @type {RTCIceCandidateInit} */
    const init = { candidate: m.candidate, sdpMid: m.sdpMid ?? null, sdpMLineIndex: m.sdpMLineIndex ?? null };
    if (!this.pc.remoteDescription) {
      this.pendingCandidates.push(init);
      return;
    }
    try {
      await this.pc.addIceCandidate(init);
    } catch (err) {
      if (!this.ignoreOffer) this.o.log(`candidate from ${this.id} refused`, err);
    }
  }

  /**
   * Replaces what we send of one kind (camera ↔ screen, or a new device)
   * without renegotiating.
   * @param {'audio'|'video'} kind
   * @param {MediaStreamTrack|null} track
   */
  async replaceTrack(kind, track) {
    for (const t of this.pc.getTransceivers()) {
      if (t.receiver.track.kind === kind && t.currentDirection !== 'stopped') {
        try {
          await t.sender.replaceTrack(track);
        } catch (err) {
          this.o.log('replaceTrack failed', err);
        }
        return;
      }
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.restartTimer);
    this.stopResend();
    for (const t of this.remoteStream.getTracks()) t.stop();
    this.pc.close();
  }

  /**
   * @private
   * @param {boolean} iceRestart
   */
  async offer(iceRestart) {
    const pc = this.pc;
    if (this.closed || this.makingOffer || pc.signalingState !== 'stable') return;
    try {
      this.makingOffer = true;
      const offer = await pc.createOffer({ iceRestart });
      if (pc.signalingState !== 'stable') return; // their offer arrived meanwhile
      await pc.setLocalDescription(offer);
      const desc = pc.localDescription;
      if (desc) {
        this.o.send('offer', { to: this.id, sdp: desc.sdp });
        this.armResend();
      }
    } catch (err) {
      this.o.log(`offer to ${this.id} failed`, err);
    } finally {
      this.makingOffer = false;
    }
  }

  /** @private */
  armResend() {
    clearTimeout(this.resendTimer);
    this.resendTimer = setTimeout(() => {
      const desc = this.pc.localDescription;
      if (this.closed || this.pc.signalingState !== 'have-local-offer' || !desc) return;
      this.o.log(`offer to ${this.id} unanswered: sending it again`);
      this.o.send('offer', { to: this.id, sdp: desc.sdp });
      this.resendDelay = Math.min(this.resendDelay * 2, 30000);
      this.armResend();
    }, this.resendDelay);
  }

  /** @private */
  stopResend() {
    clearTimeout(this.resendTimer);
    this.resendTimer = undefined;
    this.resendDelay = OFFER_RESEND_MS;
  }

  /** @private */
  ensureTransceivers() {
    const kinds = new Set(this.pc.getTransceivers().map((t) => t.receiver.track.kind));
    const local = this.o.local();
    const recvOnly = this.o.recvOnly?.() ?? false;
    for (const kind of /** @type {const} */ (['audio', 'video'])) {
      if (kinds.has(kind)) continue;
      if (recvOnly) {
        this.pc.addTransceiver(kind, { direction: 'recvonly' });
        continue;
      }
      const track = local[kind];
      this.pc.addTransceiver(track ?? kind, { direction: 'sendrecv', streams: [local.stream] });
    }
  }

  /**
   * On the answering side the transceivers come from the remote offer: put
   * our tracks on the first one of each kind and make it send.
   * @private
   */
  async attachLocal() {
    const local = this.o.local();
    const recvOnly = this.o.recvOnly?.() ?? false;
    /** @type {Set<string>} */
    const done = new Set();
    /** @type {Promise<void>[]} */
    const pending = [];
    for (const t of this.pc.getTransceivers()) {
      const kind = t.receiver.track.kind;
      if (done.has(kind) || t.currentDirection === 'stopped') continue;
      done.add(kind);
      if (recvOnly) {
        t.direction = 'recvonly';
        continue;
      }
      if (t.direction === 'recvonly' || t.direction === 'inactive') t.direction = 'sendrecv';
      const track = kind === 'audio' ? local.audio : local.video;
      if (t.sender.track !== track) pending.push(t.sender.replaceTrack(track));
      if (typeof t.sender.setStreams === 'function') t.sender.setStreams(local.stream);
    }
    await Promise.all(pending);
  }

  /** @private */
  async flushCandidates() {
    const queued = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const c of queued) {
      try {
        await this.pc.addIceCandidate(c);
      } catch (err) {
        this.o.log('queued candidate refused', err);
      }
    }
  }

  /**
   * @private
   * @param {MediaStreamTrack} track
   */
  addRemoteTrack(track) {
    for (const old of this.remoteStream.getTracks()) {
      if (old.kind === track.kind && old !== track) this.remoteStream.removeTrack(old);
    }
    if (!this.remoteStream.getTracks().includes(track)) this.remoteStream.addTrack(track);
    this.o.onStream(this.remoteStream);
  }

  /**
   * Restarts ICE when the link stays broken for RESTART_AFTER_MS; each
   * further failure waits twice as long, up to 30 s.
   * @private
   */
  watch() {
    const pc = this.pc;
    this.o.onConnState(pc.connectionState);
    const bad = ['failed', 'disconnected'];
    if (pc.connectionState === 'connected') {
      this.restartDelay = RESTART_AFTER_MS;
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
      return;
    }
    if (!(bad.includes(pc.connectionState) || bad.includes(pc.iceConnectionState)) || this.restartTimer) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closed || pc.connectionState === 'connected') return;
      this.o.log(`link to ${this.id} is ${pc.connectionState}: ICE restart`);
      this.restartDelay = Math.min(this.restartDelay * 2, 30000);
      void this.restartIce().then(() => this.watch());
    }, this.restartDelay);
  }
}
