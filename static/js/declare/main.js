// Entry point of /d, the commune's declaration page. The link a mayor gets
// is /d#t=TOKEN: the token is kept in localStorage for that commune (so the
// page can be reopened from the home screen without the link) and removed
// from the address bar. The page works offline once it has been opened: a
// service worker keeps its files, the outbox keeps the declarations.

import { api, apiError, byId, find, el, fragment, clearFragment, store, frenchDay, placeLabel } from './common.js';
import { DeclareForm, summary } from './form.js';
import { openOutbox, newKey, Sender } from './outbox.js';
import { HistoryView, mergeRows } from './history.js';

/**
 * @typedef {import('./common.js').Me} Me
 * @typedef {import('./common.js').Declaration} Declaration
 * @typedef {import('./outbox.js').OutboxItem} OutboxItem
 * @typedef {'loading'|'nolink'|'badlink'|'offline'|'operator'|'ready'} State
 */

const K = {
  tokens: 'crisisroom.declare.tokens', // { commune code: token }
  last: 'crisisroom.declare.last', // the commune opened last
  fresh: 'crisisroom.declare.fresh', // a link's token not yet confirmed by /me
  /** @param {string} c */ me: (c) => `crisisroom.declare.me.${c}`,
  /** @param {string} c */ history: (c) => `crisisroom.declare.history.${c}`,
};

/** @param {State} state */
function show(state) {
  for (const s of /** @type {State[]} */ (['loading', 'nolink', 'badlink', 'offline', 'operator', 'ready'])) {
    byId(`view-${s}`).hidden = s !== state;
  }
  document.body.dataset.state = state;
}

/** @returns {Record<string, string>} */
function tokens() {
  return store.getJSON(K.tokens) ?? {};
}

/** The device's calendar day. */
function deviceToday() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

function registerWorker() {
  if (!('serviceWorker' in navigator)) return;
  // The worker keeps the page's files so that it opens without network.
  navigator.serviceWorker.register('/declare-sw.js', { scope: '/d' })
    .then(() => navigator.serviceWorker.ready)
    .then(() => { document.body.dataset.sw = 'ready'; })
    .catch((e) => console.warn('service worker:', e));
}

/**
 * Finds the token: from the link's fragment, or the one kept for the
 * commune asked (#c=CODE) or opened last.
 * @returns {{ token: string|null, fresh: boolean }}
 */
function findToken() {
  const frag = fragment();
  const t = frag.get('t');
  if (t) {
    // Keep it before removing it from the address bar; without storage the
    // fragment stays so that a reload still works.
    if (store.set(K.fresh, t)) clearFragment();
    return { token: t, fresh: true };
  }
  const fresh = store.get(K.fresh);
  if (fresh) return { token: fresh, fresh: true };
  const code = frag.get('c') ?? store.get(K.last) ?? '';
  clearFragment();
  return { token: tokens()[code] ?? null, fresh: false };
}

/** @param {string} token */
function forgetToken(token) {
  store.del(K.fresh);
  const all = tokens();
  for (const [c, t] of Object.entries(all)) if (t === token) delete all[c];
  store.setJSON(K.tokens, all);
}

async function boot() {
  registerWorker();
  window.addEventListener('hashchange', () => location.reload());
  const { token, fresh } = findToken();
  if (!token) {
    show('nolink');
    return;
  }
  const r = await api(token, 'GET', '/me');
  if (r.status === 200) {
    const me = /** @type {Me} */ (r.body);
    if (!me.commune) {
      show('operator');
      return;
    }
    const all = tokens();
    all[me.commune] = token;
    store.setJSON(K.tokens, all);
    store.set(K.last, me.commune);
    store.setJSON(K.me(me.commune), { ...me, fetched: deviceToday() });
    store.del(K.fresh);
    await start(me, token, true);
    return;
  }
  if (r.status === 0 || r.status >= 500) {
    const code = Object.entries(tokens()).find(([, t]) => t === token)?.[0];
    const cached = code ? store.getJSON(K.me(code)) : null;
    if (cached && !fresh) {
      await start(/** @type {Me} */ (cached), token, false);
      return;
    }
    show('offline');
    window.addEventListener('online', () => location.reload(), { once: true });
    return;
  }
  forgetToken(token);
  byId('badlink-text').textContent = apiError(r).message;
  show('badlink');
}

/**
 * @param {Me & {fetched?: string}} me
 * @param {string} token
 * @param {boolean} online  whether /me answered
 */
async function start(me, token, online) {
  const commune = me.commune;
  const fetchedOn = me.fetched ?? deviceToday();
  // "Today" is the server's; a page left open (or reopened offline) moves
  // on with the device's calendar, never backwards.
  const today = () => (deviceToday() === fetchedOn ? me.today : [me.today, deviceToday()].sort()[1]);
  byId('commune-name').textContent = me.commune_name || commune;
  document.title = `Déclaration des décès – ${me.commune_name || commune}`;
  renderOtherCommunes(commune);

  const net = byId('net');
  /** @param {boolean} up */
  const setNet = (up) => {
    net.dataset.up = String(up);
    net.textContent = up ? 'En ligne' : 'Hors ligne';
  };
  setNet(online && navigator.onLine);
  window.addEventListener('offline', () => setNet(false));

  const db = await openOutbox();
  byId('volatile').hidden = db.durable;
  /** @type {Declaration[]} */
  let server = store.getJSON(K.history(commune)) ?? [];
  /** @type {OutboxItem[]} */
  let outbox = [];

  const pendingLine = byId('pending-line');
  const renderAll = () => {
    view.render(mergeRows(server, outbox));
    const waiting = outbox.filter((i) => i.status === 'pending').length;
    const refused = outbox.filter((i) => i.status === 'error').length;
    pendingLine.hidden = waiting + refused === 0;
    pendingLine.textContent = [
      waiting ? `${waiting} déclaration${waiting > 1 ? 's' : ''} en attente d’envoi` : '',
      refused ? `${refused} refusée${refused > 1 ? 's' : ''} : à corriger` : '',
    ].filter(Boolean).join(' · ');
  };

  // Sent items leave the outbox once the server's list shows them.
  const prune = async () => {
    const keys = new Set(server.map((d) => d.idempotency_key));
    for (const it of outbox) if (it.status === 'sent' && keys.has(it.key)) await db.delete(it.key);
    outbox = await db.list(commune);
  };

  const refreshHistory = async () => {
    const r = await api(token, 'GET', '/declarations');
    if (r.status !== 200) return;
    const body = /** @type {{declarations: Declaration[]}} */ (r.body);
    server = body.declarations ?? [];
    store.setJSON(K.history(commune), server);
    await prune();
    renderAll();
  };

  const flash = byId('flash');
  /** @param {'ok'|'wait'|'err'} kind @param {string} text */
  const say = (kind, text) => {
    flash.dataset.kind = kind;
    flash.textContent = text;
    flash.hidden = false;
  };

  let lastStatus = 0; // of the last send: what to tell when one waits
  const sender = new Sender({
    db, token, commune,
    onChange: (items) => {
      const newlySent = items.some((i) => i.status === 'sent' && !outbox.find((o) => o.key === i.key && o.status === 'sent'));
      outbox = items;
      renderAll();
      if (newlySent) void refreshHistory();
    },
    onAnswer: (r) => {
      lastStatus = r.status;
      setNet(r.status !== 0);
    },
  });

  const form = new DeclareForm(find(document, '#decl-form', HTMLFormElement), me, today, async (v, editing) => {
    const key = editing ?? newKey();
    const prev = editing ? await db.get(editing) : undefined;
    /** @type {OutboxItem} */
    const item = {
      key, commune, status: 'pending', attempts: 0, createdAt: prev?.createdAt ?? Date.now(),
      input: { commune, date: v.date, place: /** @type {import('./common.js').Place} */ (v.place), count: v.count, note: v.note, idempotency_key: key },
    };
    try {
      await db.put(item); // kept before the first try: a crash now loses nothing
    } catch (e) {
      say('err', `Impossible d’enregistrer sur cet appareil (${String(e)}). Réessayez.`);
      return;
    }
    form.reset();
    outbox = await db.list(commune);
    renderAll();
    say('wait', `Envoi en cours : ${summary(v)}…`);
    await sender.flush(true);
    const now = await db.get(key);
    if (!now || now.status === 'sent') {
      say('ok', `Déclaration reçue : ${summary(v)}.`);
    } else if (now.status === 'pending') {
      const why = lastStatus === 0 ? 'Pas de réseau' : `Serveur momentanément indisponible (${lastStatus})`;
      say('wait', `${why} : la déclaration (${summary(v)}) est gardée sur ce téléphone, en attente d’envoi. Elle partira toute seule dès que possible.`);
    } else {
      say('err', `Déclaration refusée : ${now.error ?? ''}`);
      form.load(key, v, now.fieldErrors ?? []);
    }
  });

  const view = new HistoryView({
    list: byId('history'), empty: byId('history-empty'), me, token,
    onFix: (it) => {
      form.load(it.key, { date: it.input.date, place: it.input.place, count: it.input.count, note: it.input.note }, it.fieldErrors ?? []);
      say('err', `À corriger : ${it.error ?? ''}`);
    },
    onDiscard: async (it) => {
      await db.delete(it.key);
      if (form.editing === it.key) form.reset();
      outbox = await db.list(commune);
      renderAll();
    },
    onRetry: () => void sender.flush(true),
    onAmended: (d) => {
      say('ok', `Correction enregistrée : ${d.count} décès · ${placeLabel(d.place)} · ${frenchDay(d.date)}.`);
      void refreshHistory();
    },
  });

  byId('forget').addEventListener('click', () => {
    const waiting = outbox.some((i) => i.status !== 'sent');
    const q = waiting
      ? 'Des déclarations ne sont pas encore envoyées : elles resteront sur ce téléphone. Oublier quand même le lien de la commune sur cet appareil ?'
      : 'Oublier le lien de la commune sur cet appareil ? Il faudra rouvrir le lien reçu pour déclarer.';
    if (!confirm(q)) return;
    forgetToken(token);
    store.del(K.me(commune));
    store.del(K.history(commune));
    store.del(K.last);
    show('nolink');
  });

  window.addEventListener('online', () => {
    setNet(true);
    void refreshHistory();
  });

  outbox = await db.list(commune);
  renderAll();
  show('ready');
  await sender.start();
  if (online) await refreshHistory();
}

/**
 * Links to the other communes this device holds a link for (a secretary of
 * several mairies).
 * @param {string} current
 */
function renderOtherCommunes(current) {
  const others = Object.keys(tokens()).filter((c) => c !== current);
  const nav = byId('others');
  nav.hidden = others.length === 0;
  const list = find(nav, 'ul', HTMLUListElement);
  list.replaceChildren(...others.map((c) => {
    const li = el('li');
    const cached = /** @type {Me|null} */ (store.getJSON(K.me(c)));
    const a = el('a', 'other', cached?.commune_name || c);
    a.href = `/d#c=${encodeURIComponent(c)}`;
    li.append(a);
    return li;
  }));
}

void boot().catch((e) => {
  console.error(e);
  byId('badlink-text').textContent = `Erreur de la page : ${String(e)}`;
  show('badlink');
});
