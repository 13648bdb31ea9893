// Entry point of the room page. /r/{room}#t=TOKEN is a room entered with a
// link; /r/{room} alone is entered with the staff session (cookie), or says
// how to log in. The room itself is room.js.

import { I18n, bindLanguage } from './i18n.js';
import { byId, find } from './ui.js';
import { getSession, sessionAuth } from './api.js';
import { RoomApp, show } from './room.js';
import { loginURL } from './final.js';

/** @typedef {import('./api.js').Session} Session */

/**
 * The token travels in the fragment, which no request carries. It is kept in
 * sessionStorage (so a reload still works) and removed from the address bar,
 * so that a screen share or a screenshot does not leak it.
 * @param {string} room
 * @returns {string|null}
 */
function readToken(room) {
  const key = `crisisroom.token.${room}`;
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('t');
  if (fromHash) {
    try {
      sessionStorage.setItem(key, fromHash);
      // A watch-only link may say so (w=1): remembered before the fragment
      // goes; a new link without it starts afresh.
      const watchKey = `crisisroom.watch.${room}`;
      if (new URLSearchParams(location.hash.slice(1)).get('w') === '1') sessionStorage.setItem(watchKey, '1');
      else sessionStorage.removeItem(watchKey);
      history.replaceState(null, '', location.pathname + location.search);
    } catch {
      // No storage: leave the fragment so that a reload keeps working.
    }
    return fromHash;
  }
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

/**
 * No link token in the address: a staff member enters with the session
 * cookie; anyone else is shown the way to log in.
 * @param {I18n} i18n
 * @param {string} room
 * @param {() => void} relabel
 */
async function enterWithSession(i18n, room, relabel) {
  /** @type {Session|null} */
  let session = null;
  let failed = false;
  try {
    session = await getSession();
  } catch (err) {
    console.warn('session', err);
    failed = true;
  }
  if (session) {
    void new RoomApp(i18n, room, sessionAuth(session.csrf), session).prejoin();
    return;
  }
  byId('landing-title').dataset.i18n = failed ? 'final.other.title' : 'nosession.title';
  byId('landing-text').dataset.i18n = failed ? 'nosession.failed' : 'nosession.text';
  const login = find(document, '#landing-login', HTMLAnchorElement);
  login.href = loginURL();
  login.hidden = failed;
  relabel();
  show('landing');
}

function main() {
  const i18n = new I18n();
  const applyLang = bindLanguage(i18n, 'app.title');

  const m = /^\/r\/([^/]+)\/?$/.exec(location.pathname);
  if (!m) {
    show('landing');
    return;
  }
  const room = decodeURIComponent(m[1]);
  byId('room-title').textContent = room;
  const token = readToken(room);
  if (!token) {
    void enterWithSession(i18n, room, applyLang);
    return;
  }
  void new RoomApp(i18n, room, { token, csrf: '' }, null).prejoin();
}

main();
