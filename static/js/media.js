// Our own camera, microphone and screen. One MediaStream holds what we send:
// the microphone track and either the camera or the screen track, so that
// the preview, the peers and the speaker detector all see the same thing.

/**
 * @typedef {object} MediaListener
 * @property {(kind: 'audio'|'video', track: MediaStreamTrack|null) => void} onTrack  what we send changed
 * @property {() => void} onChange  a toggle changed (mute, camera, screen)
 */

/** A mesh of six sends five copies of our video: keep each one modest. */
const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24, max: 30 } };
const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

export class LocalMedia {
  /** @param {MediaListener} listener */
  constructor(listener) {
    this.l = listener;
    this.stream = new MediaStream();
    /** @type {MediaStreamTrack|null} */
    this.mic = null;
    /** @type {MediaStreamTrack|null} */
    this.camera = null;
    /** @type {MediaStreamTrack|null} */
    this.screen = null;
    this.audioOn = true;
    this.videoOn = true;
    /** @type {string|null} why the devices could not be opened (an error name) */
    this.error = null;
  }

  /** Whether this browser can share a screen at all (not on phones). */
  static canShareScreen() {
    return !!(navigator.mediaDevices && typeof navigator.mediaDevices.getDisplayMedia === 'function');
  }

  /**
   * Opens camera and microphone. When both cannot be had, tries each alone,
   * so that a laptop with a broken camera can still talk.
   * @returns {Promise<void>}
   */
  async open() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.error = 'NotSupportedError';
      return;
    }
    const attempts = [
      { audio: AUDIO_CONSTRAINTS, video: VIDEO_CONSTRAINTS },
      { audio: AUDIO_CONSTRAINTS, video: false },
      { audio: false, video: VIDEO_CONSTRAINTS },
    ];
    for (const c of attempts) {
      try {
        const s = await navigator.mediaDevices.getUserMedia(c);
        this.setMic(s.getAudioTracks()[0] ?? null);
        this.setCamera(s.getVideoTracks()[0] ?? null);
        this.error = null;
        return;
      } catch (err) {
        this.error = err instanceof DOMException ? err.name : 'Error';
        if (this.error === 'NotAllowedError' || this.error === 'SecurityError') return;
      }
    }
  }

  /** @returns {MediaStreamTrack|null} */
  get videoTrack() {
    return this.screen ?? this.camera;
  }

  /** What peers should carry, for PeerLink. */
  tracks() {
    return { audio: this.mic, video: this.videoTrack, stream: this.stream };
  }

  /** @param {boolean} on */
  setAudio(on) {
    this.audioOn = on;
    if (this.mic) this.mic.enabled = on;
    this.l.onChange();
  }

  /** @param {boolean} on */
  setVideo(on) {
    this.videoOn = on;
    if (this.camera) this.camera.enabled = on;
    this.l.onChange();
  }

  /**
   * Starts screen sharing in place of the camera. Rejects when the user
   * cancels the picker.
   */
  async startScreen() {
    const s = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
    const track = s.getVideoTracks()[0];
    if (!track) return;
    // The browser's own "stop sharing" button ends the track.
    track.addEventListener('ended', () => { if (this.screen === track) this.stopScreen(); });
    if ('contentHint' in track) track.contentHint = 'detail';
    this.swapVideo(track, () => { this.screen = track; });
  }

  stopScreen() {
    const old = this.screen;
    if (!old) return;
    this.swapVideo(this.camera, () => { this.screen = null; });
    old.stop();
  }

  stopAll() {
    for (const t of [this.mic, this.camera, this.screen]) t?.stop();
  }

  /**
   * Gives the devices back for good (a watch-only member): nothing is sent,
   * and the toggles read "off".
   */
  release() {
    this.stopAll();
    for (const t of this.stream.getTracks()) this.stream.removeTrack(t);
    this.mic = null;
    this.camera = null;
    this.screen = null;
    this.audioOn = false;
    this.videoOn = false;
    this.error = null;
    this.l.onTrack('audio', null);
    this.l.onTrack('video', null);
    this.l.onChange();
  }

  /**
   * @private
   * @param {MediaStreamTrack|null} next
   * @param {() => void} commit
   */
  swapVideo(next, commit) {
    const prev = this.videoTrack;
    commit();
    if (prev) this.stream.removeTrack(prev);
    if (next) this.stream.addTrack(next);
    this.l.onTrack('video', next);
    this.l.onChange();
  }

  /**
   * @private
   * @param {MediaStreamTrack|null} t
   */
  setMic(t) {
    if (this.mic) this.stream.removeTrack(this.mic);
    this.mic = t;
    if (t) {
      t.enabled = this.audioOn;
      this.stream.addTrack(t);
    }
  }

  /**
   * @private
   * @param {MediaStreamTrack|null} t
   */
  setCamera(t) {
    if (this.camera) this.stream.removeTrack(this.camera);
    this.camera = t;
    if (t) {
      t.enabled = this.videoOn;
      this.stream.addTrack(t);
    }
  }
}
