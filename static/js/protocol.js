// The wire protocol as the browser sees it. protocol/protocol.go is the
// reference; keep the two in step.

export const VERSION = 1;

/** WebSocket close codes sent by the server (4000–4499: reconnect, 4500+: final). */
export const Close = Object.freeze({
  Shutdown: 4000,
  SlowConsumer: 4001,
  PingTimeout: 4002,
  Replaced: 4003,
  BadToken: 4500,
  TokenExpired: 4501,
  RoomFull: 4502,
  BadVersion: 4503,
  Protocol: 4504,
  Left: 4505,
  SessionGone: 4506,
  Refused: 4507, // the host refused entry from the lobby
  Revoked: 4508, // the guest link was revoked: the session is over
});

/**
 * Roles that run the room: they admit guests, present the map, manage
 * guest links. Staff sessions join as "operator" (or "admin"), room links
 * as "host"; the server decides anyway, this only shapes the page.
 * @param {string|undefined} role
 */
export function isHostRole(role) {
  return role === 'host' || role === 'operator' || role === 'admin';
}

/**
 * Mirrors protocol.ShouldReconnect, plus the transport-level closes that mean
 * "the network or the server went away" rather than "you are refused".
 * 1006 is what the browser reports when the TCP connection dies or the server
 * cannot be reached at all.
 * @param {number} code
 * @returns {boolean}
 */
export function shouldReconnect(code) {
  if (code >= 4000 && code < 4500) return code !== Close.Replaced;
  return code === 1001 || code === 1005 || code === 1006 || code === 1011 || code === 1012 || code === 1013;
}

/**
 * @typedef {{v: number, type: string, id?: string, data?: any}} Envelope
 * @typedef {{urls: string[], username?: string, credential?: string}} ICEServer
 * @typedef {{from?: string, audio: boolean, video: boolean, screen: boolean, hand: boolean, speaking: boolean}} PeerState
 * @typedef {{id: string, name: string, role: string, state: PeerState}} PeerInfo
 * @typedef {{from?: string, center: [number, number], zoom: number, commune?: string}} MapView
 *   the map presenter's viewport ([latitude, longitude]) and selected commune
 * @typedef {{peer_id: string, role?: string, resume_token: string, room: string, capacity: number, peers: PeerInfo[],
 *   ice_servers: ICEServer[], resumed: boolean, resume_window_ms: number, ice_transport_policy?: string, presenter?: string, view?: MapView,
 *   watch_only?: boolean, can?: string[], mode?: string}} Joined
 *   watch_only: a guest who came with a "watch only" link: receive only, no annotations;
 *   can: the room actions this member may take ("room.admit", "room.annotate"…), to hide the others;
 *   mode: the room's media, "mesh" (peer to peer) or "sfu" (through the server); "mode" messages tell its changes
 * @typedef {{id: string, name: string, since?: number, watch_only?: boolean, label?: string}} LobbyGuest
 *   one guest waiting in the lobby, as hosts see it (lobby-list)
 * @typedef {{to?: string, from?: string, sdp: string}} SDPMessage
 * @typedef {{to?: string, from?: string, candidate: string, sdpMid?: string|null, sdpMLineIndex?: number|null}} CandidateMessage
 * @typedef {{from?: string, name?: string, text: string, at?: number}} ChatMessage
 * @typedef {{code: string, message: string, ref?: string}} ErrorMessage
 * @typedef {{code: number, reason: string, reconnect: boolean}} ByeMessage
 */

/** Largest values the server accepts (protocol.Max*). */
export const Limits = Object.freeze({ nameRunes: 64, chatRunes: 2000 });

/**
 * Trims and bounds a display name the way the server validates it: no
 * control characters, 1 to 64 code points.
 * @param {string} s
 * @returns {string}
 */
export function cleanName(s) {
  // eslint-disable-next-line no-control-regex
  const flat = s.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
  return Array.from(flat).slice(0, Limits.nameRunes).join('');
}
