// Who is speaking: a Web Audio analyser on every stream (ours and each
// peer's), measured locally, so the highlight does not wait for the network.

/** RMS level (0..1) above which a stream counts as speech. Fake and real
 * microphones with noise suppression sit well under it when silent. */
const THRESHOLD = 0.02;
/** Speech keeps the highlight this long after the level drops, so that it
 * does not flicker between words. */
const HOLD_MS = 600;
const TICK_MS = 120;

/**
 * @typedef {object} Watched
 * @property {MediaStreamAudioSourceNode} source
 * @property {AnalyserNode} analyser
 * @property {MediaStreamTrack} track
 * @property {number} lastLoud
 * @property {boolean} speaking
 * @property {number} level
 */

export class SpeakerDetector {
  /**
   * @param {(id: string, speaking: boolean) => void} onSpeaking
   * @param {(id: string|null) => void} onActive   the loudest speaker, or null
   */
  constructor(onSpeaking, onActive) {
    this.onSpeaking = onSpeaking;
    this.onActive = onActive;
    /** @type {AudioContext|null} */
    this.ctx = null;
    /** @type {Map<string, Watched>} */
    this.watched = new Map();
    /** @type {string|null} */
    this.active = null;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.timer = undefined;
    this.buf = new Float32Array(1024);
  }

  /**
   * Creates the AudioContext. Call it from a user gesture (the join click):
   * browsers keep a context made without one suspended.
   */
  enable() {
    if (this.ctx) return;
    // Safari before 14.1 only has the prefixed constructor.
    const Ctor = window.AudioContext ?? /** @type {any} */ (window).webkitAudioContext;
    if (!Ctor) return;
    this.ctx = new Ctor();
    void this.ctx.resume();
    // A timer, not requestAnimationFrame: it must keep going when the tab
    // is in the background and the user is only listening.
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /**
   * Starts (or restarts, when the audio track changed) watching one stream.
   * @param {string} id
   * @param {MediaStream} stream
   */
  watch(id, stream) {
    const track = stream.getAudioTracks()[0];
    const cur = this.watched.get(id);
    if (!this.ctx || !track) return;
    if (cur && cur.track === track) return;
    this.unwatch(id);
    // A source built on a one-track stream keeps measuring this track even
    // when the video track of the original stream changes.
    const source = this.ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = this.ctx.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser); // not to the destination: the <video> plays the sound
    this.watched.set(id, { source, analyser, track, lastLoud: -Infinity, speaking: false, level: 0 });
  }

  /** @param {string} id */
  unwatch(id) {
    const w = this.watched.get(id);
    if (!w) return;
    w.source.disconnect();
    this.watched.delete(id);
    if (w.speaking) this.onSpeaking(id, false);
    if (this.active === id) {
      this.active = null;
      this.onActive(null);
    }
  }

  close() {
    clearInterval(this.timer);
    for (const id of [...this.watched.keys()]) this.unwatch(id);
    void this.ctx?.close();
    this.ctx = null;
  }

  /** @private */
  tick() {
    const now = performance.now();
    /** @type {string|null} */
    let loudest = null;
    let best = 0;
    for (const [id, w] of this.watched) {
      w.analyser.getFloatTimeDomainData(this.buf);
      let sum = 0;
      for (let i = 0; i < this.buf.length; i++) sum += this.buf[i] * this.buf[i];
      w.level = Math.sqrt(sum / this.buf.length);
      // Muting ends the highlight at once, without the hold.
      if (!w.track.enabled) w.lastLoud = -Infinity;
      else if (w.level > THRESHOLD) w.lastLoud = now;
      const speaking = now - w.lastLoud < HOLD_MS;
      if (speaking !== w.speaking) {
        w.speaking = speaking;
        this.onSpeaking(id, speaking);
      }
      if (speaking && w.level > best) {
        best = w.level;
        loudest = id;
      }
    }
    // Keep the current active speaker during their pauses.
    if (loudest === null && this.active && this.watched.get(this.active)?.speaking) loudest = this.active;
    if (loudest !== this.active) {
      this.active = loudest;
      this.onActive(loudest);
    }
  }
}
