// The signaling socket: join, resume after a drop, backoff, and the one
// decision that matters to the user — "we will be back" or "this is over".

import { VERSION, Close, shouldReconnect } from './protocol.js';

/**
 * @typedef {import('./protocol.js').Envelope} Envelope
 * @typedef {import('./protocol.js').Joined} Joined
 * @typedef {'connecting'|'open'|'reconnecting'|'closed'} SignalStatus
 *
 * @typedef {object} SignalHandlers
 * @property {(joined: Joined, env: Envelope) => void} onJoined
 * @property {(env: Envelope) => void} onMessage      every other server message
 * @property {(status: SignalStatus, attempt: number) => void} onStatus
 * @property {(code: number, reason: string) => void} onFinal  the session is over; do not retry
 * @property {() => void} onSessionLost  the seat is gone: the next "joined" is a fresh join
 */

/** Backoff steps in ms; the last one repeats. Jitter keeps a room that lost
 * the server at once from coming back at the same millisecond. */
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];
const CONNECT_TIMEOUT_MS = 10000;

export class Signaling {
  /**
   * @param {{url: string, token: string, room: string, name: string, handlers: SignalHandlers}} opts
   *   token: the link's token; '' for a staff session (the socket carries its cookie), which names the room
   */
  constructor(opts) {
    this.url = opts.url;
    this.token = opts.token;
    this.room = opts.room;
    this.name = opts.name;
    this.h = opts.handlers;
    /** @type {WebSocket|null} */
    this.ws = null;
    /** @type {string|null} */
    this.resumeToken = null;
    /** @type {SignalStatus} */
    this.status = 'connecting';
    this.attempt = 0;
    this.nextId = 1;
    this.stopped = false;
    this.leaving = false;
    /** @type {import('./protocol.js').ByeMessage|null} */
    this.lastBye = null;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.retryTimer = undefined;
    this.onOnline = () => { if (this.status === 'reconnecting') this.retryNow(); };
    window.addEventListener('online', this.onOnline);
  }

  start() {
    this.setStatus('connecting');
    this.open();
  }

  /** @returns {boolean} whether the socket is joined and usable */
  get ready() {
    return this.status === 'open' && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Sends one message. Returns its id, or null when the socket is down: the
   * caller's state is re-sent after resume, so nothing is queued here.
   * @param {string} type
   * @param {any} [data]
   * @returns {string|null}
   */
  send(type, data) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return null;
    const id = String(this.nextId++);
    /** @type {Envelope} */
    const env = { v: VERSION, type, id };
    if (data !== undefined) env.data = data;
    this.ws.send(JSON.stringify(env));
    return id;
  }

  /** Leaves the room for good: the server frees the seat at once. */
  leave() {
    this.leaving = true;
    if (this.ready) {
      this.send('leave');
    } else {
      this.finish(Close.Left, 'left');
    }
  }

  /**
   * Ends the session from this side for a reason the server gave in an
   * error (refused, revoked) just before closing: its close frame may never
   * arrive, and nothing must reconnect.
   * @param {number} code
   * @param {string} reason
   */
  end(code, reason) {
    if (this.stopped) return;
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, 'bye');
    this.finish(code, reason);
  }

  /** Stops everything without telling the server (page unload). */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    window.removeEventListener('online', this.onOnline);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, 'bye');
    }
  }

  /** @private */
  open() {
    if (this.stopped) return;
    this.lastBye = null;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    const timer = setTimeout(() => { if (ws.readyState === WebSocket.CONNECTING) ws.close(); }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      clearTimeout(timer);
      if (this.resumeToken) {
        this.send('resume', { resume_token: this.resumeToken });
      } else {
        // A staff session names the room; the server reads who we are from
        // the cookie the socket was opened with.
        this.send('join', this.token ? { token: this.token, name: this.name } : { token: '', room: this.room, name: this.name });
      }
    };
    ws.onmessage = (ev) => this.receive(ws, ev);
    ws.onclose = (ev) => {
      clearTimeout(timer);
      if (this.ws === ws) this.closed(ev.code, ev.reason);
    };
  }

  /**
   * @private
   * @param {WebSocket} ws
   * @param {MessageEvent} ev
   */
  receive(ws, ev) {
    if (this.ws !== ws || typeof ev.data !== 'string') return;
    /** @type {Envelope} */
    let env;
    try {
      env = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!env || typeof env.type !== 'string') return;
    switch (env.type) {
      case 'joined':
        this.resumeToken = env.data.resume_token;
        this.attempt = 0;
        this.setStatus('open');
        this.h.onJoined(env.data, env);
        return;
      case 'bye':
        // The close frame may be lost behind a proxy; remember why.
        this.lastBye = env.data;
        return;
      default:
        this.h.onMessage(env);
    }
  }

  /**
   * @private
   * @param {number} code
   * @param {string} reason
   */
  closed(code, reason) {
    this.ws = null;
    if (this.stopped) return;
    // A close frame lost on the way turns into 1006: the bye said more.
    if ((code === 1006 || code === 1005) && this.lastBye) {
      code = this.lastBye.code;
      reason = this.lastBye.reason;
    }
    if (this.leaving || code === Close.Left) {
      this.finish(Close.Left, reason);
      return;
    }
    if (code === Close.SessionGone) {
      // The resume window ended (or the server forgot us): the link token
      // still lets us in, as a new member.
      this.resumeToken = null;
      this.h.onSessionLost();
      this.retry();
      return;
    }
    if (!shouldReconnect(code)) {
      this.finish(code, reason);
      return;
    }
    this.retry();
  }

  /** @private */
  retry() {
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delay = Math.round(base * (0.7 + Math.random() * 0.6));
    this.attempt++;
    this.setStatus('reconnecting');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** @private */
  retryNow() {
    clearTimeout(this.retryTimer);
    if (!this.ws) this.open();
  }

  /**
   * @private
   * @param {number} code
   * @param {string} reason
   */
  finish(code, reason) {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    window.removeEventListener('online', this.onOnline);
    this.setStatus('closed');
    this.h.onFinal(code, reason);
  }

  /**
   * @private
   * @param {SignalStatus} s
   */
  setStatus(s) {
    this.status = s;
    this.h.onStatus(s, this.attempt);
  }
}
