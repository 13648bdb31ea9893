// The end of a session as the page shows it (why, and the way back), and
// the header's connection pill. Kept apart from room.js, which runs the
// live room.

import { Close } from './protocol.js';
import { byId } from './ui.js';

/** The staff home, coming back to this room once logged in. */
export function loginURL() {
  return `/?next=${encodeURIComponent(location.pathname)}`;
}

/**
 * Fills the final view for a close code, and returns its text key.
 * @param {import('./i18n.js').I18n} i18n
 * @param {number} code
 * @param {boolean} wasWaiting  the guest was still in the lobby
 * @param {boolean} staff  entered with the staff session, not a link
 * @returns {string}
 */
export function showFinal(i18n, code, wasWaiting, staff) {
  /** @type {number[]} */
  const known = [Close.BadToken, Close.TokenExpired, Close.RoomFull, Close.BadVersion, Close.Protocol, Close.Replaced, Close.Refused, Close.Revoked];
  // A staff member's session ended (expired, logged out everywhere): log in again.
  const staffOut = staff && (code === Close.BadToken || code === Close.TokenExpired || code === Close.Revoked);
  const key = code === Close.Left ? (wasWaiting ? 'lobbyLeft' : 'left') : staffOut ? 'session' : known.includes(code) ? String(code) : 'other';
  byId('view-final').dataset.code = String(code);
  relabelFinal(i18n, key, code);
  const again = byId('rejoin');
  again.hidden = !(staffOut || code === Close.Left || code === Close.BadVersion || code === Close.RoomFull || key === 'other');
  again.onclick = staffOut ? () => location.assign(loginURL()) : () => location.reload();
  return key;
}

/**
 * The final view's texts, again on a language switch.
 * @param {import('./i18n.js').I18n} i18n
 * @param {string} key
 * @param {number} code
 */
export function relabelFinal(i18n, key, code) {
  byId('final-title').textContent = i18n.t(`final.${key}.title`);
  byId('final-text').textContent = i18n.t(`final.${key}.text`, { code });
  const again = key === 'session' ? 'final.login' : code === Close.BadVersion ? 'final.reload' : code === Close.RoomFull ? 'final.retry' : 'final.rejoin';
  byId('rejoin').textContent = i18n.t(again);
}

/**
 * The header's connection pill: the signaling status, or "waiting" in the
 * lobby.
 * @param {import('./i18n.js').I18n} i18n
 * @param {import('./signal.js').SignalStatus|'waiting'} s
 */
export function setConn(i18n, s) {
  const conn = byId('conn');
  conn.dataset.status = s;
  conn.textContent = i18n.t(`conn.${s}`);
}
