// A host chooses how the room's video travels: automatically (peer to
// peer while small, through the server past a handful of faces), always
// peer to peer, or always through the server. The server decides who may
// (room.mode) and tells every member the mode it moves to.

import { byId } from './ui.js';

/**
 * @param {(type: string, data: any) => void} send  to the signaling socket
 * @returns {(host: boolean) => void}  shows or hides the control
 */
export function wireModeChoice(send) {
  const box = byId('mode-choice-box');
  const select = /** @type {HTMLSelectElement} */ (byId('mode-choice'));
  select.addEventListener('change', () => send('mode', { mode: select.value }));
  return (host) => { box.hidden = !host; };
}
