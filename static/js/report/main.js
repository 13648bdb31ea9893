// The morning report (/report#t=TOKEN, a prefecture operator's link): one
// day's figures (yesterday by default), the change from the day before,
// the communes in alert and those that have not declared, printable on A4,
// and the full CSV export.

import { api, apiError, byId, el, fragment, clearFragment, frenchDay, addDays, PLACES } from '../declare/common.js';
import { getSession } from '../api.js';

/**
 * @typedef {import('../declare/common.js').Me} Me
 *
 * @typedef {object} ReportLine
 * @property {string} code
 * @property {string} name
 * @property {Record<string, number>} by_place
 * @property {number} total
 * @property {number} previous
 * @property {number} change
 * @property {number} last7
 * @property {number} rate7
 * @property {number} level
 * @property {string} level_name
 *
 * @typedef {object} AlertEvent
 * @property {string} commune
 * @property {number} from
 * @property {number} to
 * @property {string} at
 *
 * @typedef {object} Report
 * @property {string} date
 * @property {string} generated_at
 * @property {ReportLine} departement
 * @property {ReportLine[]} communes
 * @property {ReportLine[]} in_alert
 * @property {ReportLine[]} not_declared
 * @property {AlertEvent[]} alert_events
 */

const TOKEN_KEY = 'crisisroom.report.token';
const LEVELS = ['Normal', 'Vigilance', 'Alerte', 'Crise'];
const LEVEL_KEYS = ['normal', 'vigilance', 'alerte', 'crise'];
const num = new Intl.NumberFormat('fr-FR');
const rate = new Intl.NumberFormat('fr-FR', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const stamp = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'full', timeStyle: 'short' });

/**
 * The token travels in the fragment; it is kept for this tab only and
 * removed from the address bar (the report is often shown on a screen).
 */
function readToken() {
  const t = fragment().get('t');
  try {
    if (t) {
      sessionStorage.setItem(TOKEN_KEY, t);
      clearFragment();
      return t;
    }
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return t;
  }
}

/** @param {string} title @param {string} text */
function message(title, text) {
  byId('message-title').textContent = title;
  byId('message-text').textContent = text;
  byId('view-message').hidden = false;
  byId('view-report').hidden = true;
  document.body.dataset.state = 'message';
}

/** @param {string} text */
function status(text) {
  byId('status').textContent = text;
}

/** "+3", "−2", "=" */
function signed(/** @type {number} */ n) {
  if (n > 0) return `+${num.format(n)}`;
  if (n < 0) return `−${num.format(-n)}`;
  return '=';
}

/** @param {number} level */
function levelCell(level) {
  const td = el('td');
  td.append(el('span', `lvl lvl-${LEVEL_KEYS[level] ?? 'normal'}`, LEVELS[level] ?? String(level)));
  return td;
}

/** @param {string|number} v @param {string} [cls] */
function cell(v, cls) {
  return el('td', cls, typeof v === 'number' ? num.format(v) : v);
}

/** @param {ReportLine} l */
function communeCell(l) {
  const th = el('th');
  th.scope = 'row';
  th.append(el('span', 'cname', l.name || l.code), el('span', 'code', ` ${l.code}`));
  return th;
}

/** @param {number} change */
function changeCell(change) {
  return el('td', `num change ${change > 0 ? 'up' : change < 0 ? 'down' : 'same'}`, signed(change));
}

/** @param {HTMLElement} table @param {HTMLElement} empty @param {HTMLElement} n @param {HTMLTableRowElement[]} rows */
function fill(table, empty, n, rows) {
  const body = table.querySelector('tbody');
  body?.replaceChildren(...rows);
  table.hidden = rows.length === 0;
  empty.hidden = rows.length > 0;
  n.textContent = `(${rows.length})`;
}

/** @param {Report} rep */
function render(rep) {
  const d = rep.departement;
  byId('rep-day').textContent = `Décès du ${frenchDay(rep.date, true)}`;
  byId('rep-gen').textContent = `Établi le ${stamp.format(new Date(rep.generated_at))}`;
  document.title = `Point de situation des décès – ${rep.date}`;

  const kpis = byId('dep-kpis');
  /** @type {[string, string, string?][]} */
  const items = [
    ['Décès du jour', num.format(d.total)],
    ['La veille', num.format(d.previous)],
    ['Évolution', signed(d.change), d.change > 0 ? 'up' : d.change < 0 ? 'down' : 'same'],
    ['7 derniers jours', num.format(d.last7)],
    ['Taux 7 j / 100 000 hab.', rate.format(d.rate7)],
  ];
  kpis.replaceChildren(...items.map(([label, value, cls]) => {
    const k = el('div', 'kpi');
    k.append(el('span', 'kpi-label', label), el('span', `kpi-value ${cls ?? ''}`, value));
    return k;
  }));
  const lvl = el('div', 'kpi');
  lvl.append(el('span', 'kpi-label', 'Niveau'), el('span', `kpi-value lvl lvl-${LEVEL_KEYS[d.level] ?? 'normal'}`, LEVELS[d.level] ?? ''));
  kpis.append(lvl);

  const depRow = el('tr');
  const depHead = el('th', '', 'Département');
  depHead.scope = 'row';
  depRow.append(depHead, ...PLACES.map(([p]) => cell(d.by_place[p] ?? 0, 'num')), cell(d.total, 'num strong'));
  byId('dep-table').querySelector('tbody')?.replaceChildren(depRow);

  const alertRows = [...rep.in_alert].sort((a, b) => b.level - a.level || b.rate7 - a.rate7).map((l) => {
    const tr = el('tr');
    tr.append(communeCell(l), levelCell(l.level), cell(l.total, 'num'), cell(l.last7, 'num'), cell(rate.format(l.rate7), 'num'));
    return tr;
  });
  fill(byId('alert-table'), byId('alert-empty'), byId('alert-n'), alertRows);

  const communeRows = [...rep.communes].sort((a, b) => b.total - a.total || b.change - a.change || a.name.localeCompare(b.name, 'fr')).map((l) => {
    const tr = el('tr');
    tr.dataset.code = l.code;
    tr.append(communeCell(l), ...PLACES.map(([p]) => cell(l.by_place[p] ?? 0, 'num')),
      cell(l.total, 'num strong'), cell(l.previous, 'num'), changeCell(l.change), cell(l.last7, 'num'), levelCell(l.level));
    return tr;
  });
  fill(byId('communes-table'), byId('communes-empty'), byId('communes-n'), communeRows);

  const missing = [...rep.not_declared].sort((a, b) => a.name.localeCompare(b.name, 'fr'));
  byId('missing-list').replaceChildren(...missing.map((l) => el('li', '', l.name || l.code)));
  byId('missing-list').hidden = missing.length === 0;
  byId('missing-empty').hidden = missing.length > 0;
  byId('missing-n').textContent = `(${missing.length})`;

  const names = new Map([...rep.communes, ...rep.in_alert, ...rep.not_declared].map((l) => [l.code, l.name]));
  const events = [...rep.alert_events].reverse().slice(0, 30);
  byId('events-list').replaceChildren(...events.map((e) => {
    const who = e.commune ? names.get(e.commune) || e.commune : 'Département';
    return el('li', '', `${stamp.format(new Date(e.at))} – ${who} : ${LEVELS[e.from] ?? e.from} → ${LEVELS[e.to] ?? e.to}`);
  }));
  byId('events-empty').hidden = events.length > 0;

  byId('view-message').hidden = true;
  byId('view-report').hidden = false;
  document.body.dataset.state = 'ready';
  document.body.dataset.date = rep.date;
}

/**
 * Downloads the export with the token in the header (a plain link could
 * not carry it), then saves the answer as a file.
 * @param {string} token  '' for a staff session (the cookie)
 */
async function downloadCSV(token) {
  const btn = /** @type {HTMLButtonElement} */ (byId('csv'));
  btn.disabled = true;
  status('Préparation du fichier…');
  try {
    const res = await fetch('/api/v1/export.csv', { headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) {
      let msg = `erreur ${res.status}`;
      try {
        msg = (await res.json()).message ?? msg;
      } catch {
        // not JSON
      }
      status(`Export impossible : ${msg}`);
      return;
    }
    const blob = await res.blob();
    const name = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') ?? '')?.[1] ?? 'declarations.csv';
    const url = URL.createObjectURL(blob);
    const a = el('a');
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    const lines = (await blob.text()).split('\r\n').filter(Boolean).length - 1;
    status(`Fichier ${name} téléchargé (${num.format(lines)} ligne${lines > 1 ? 's' : ''}).`);
    btn.dataset.lines = String(lines);
  } catch {
    status('Export impossible : pas de réseau.');
  } finally {
    btn.disabled = false;
  }
}

async function boot() {
  // A link's token, else the staff session's cookie ('').
  let token = readToken();
  if (!token && await getSession().catch(() => null)) token = '';
  if (token === null) {
    message('Ouvrez le lien de la préfecture', 'Le rapport s’ouvre avec le lien d’animateur de la salle de crise (il contient une clé après le signe #), ou après connexion sur la page d’accueil.');
    return;
  }
  const r = await api(token, 'GET', '/me');
  if (r.status !== 200) {
    message('Accès impossible', apiError(r).message);
    return;
  }
  const me = /** @type {Me} */ (r.body);
  if (!me.operator) {
    message('Accès réservé', 'Ce lien ne donne pas accès au rapport : il faut un lien d’animateur de la préfecture.');
    return;
  }
  const day = /** @type {HTMLInputElement} */ (byId('day'));
  const prev = /** @type {HTMLButtonElement} */ (byId('prev'));
  const next = /** @type {HTMLButtonElement} */ (byId('next'));
  day.max = me.today;
  if (me.event_start) day.min = me.event_start;

  /** @param {string} date  '' for the server's default (yesterday) */
  const load = async (date) => {
    status('Chargement…');
    const q = date ? `?date=${encodeURIComponent(date)}` : '';
    const res = await api(token, 'GET', `/report${q}`);
    if (res.status !== 200) {
      status(`Rapport indisponible : ${apiError(res).message}`);
      return;
    }
    const rep = /** @type {Report} */ (res.body);
    day.value = rep.date;
    next.disabled = rep.date >= me.today;
    render(rep);
    status('');
  };

  day.addEventListener('change', () => { if (day.value) void load(day.value); });
  prev.addEventListener('click', () => void load(addDays(day.value, -1)));
  next.addEventListener('click', () => void load(addDays(day.value, 1)));
  byId('print').addEventListener('click', () => window.print());
  byId('csv').addEventListener('click', () => void downloadCSV(token));
  await load('');
}

void boot().catch((e) => {
  console.error(e);
  message('Erreur de la page', String(e));
});
