// Service worker of the declaration page, served as /declare-sw.js with
// scope /d. It keeps the page's own files so that a mayor can reopen the
// page with no network and still declare (the outbox sends later). Network
// first: online, the page is always the server's current one. It never
// touches /api/: declarations go through the page's outbox, and a cached
// answer there would be a lie.

/**
 * The worker's globals, which the DOM typings do not describe.
 * @typedef {Event & { waitUntil(p: Promise<unknown>): void }} ExtendableEvt
 * @typedef {ExtendableEvt & { request: Request, respondWith(r: Promise<Response>): void }} FetchEvt
 * @typedef {object} WorkerScope
 * @property {() => Promise<void>} skipWaiting
 * @property {{ claim(): Promise<void> }} clients
 * @property {(type: string, fn: (e: any) => void) => void} addEventListener
 * @property {Location} location
 */

const worker = /** @type {WorkerScope} */ (/** @type {unknown} */ (self));

// Bump when SHELL changes: the old cache is dropped on activation.
const CACHE = 'crisisroom-declare-v2';
const SHELL = [
  '/d',
  '/css/base.css',
  '/css/declare.css',
  '/js/declare/main.js',
  '/js/declare/common.js',
  '/js/declare/form.js',
  '/js/declare/history.js',
  '/js/declare/outbox.js',
];
// On a very slow network, the cached page is shown after this long.
const NETWORK_WAIT_MS = 4000;

worker.addEventListener('install', (/** @type {ExtendableEvt} */ e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => worker.skipWaiting()));
});

worker.addEventListener('activate', (/** @type {ExtendableEvt} */ e) => {
  e.waitUntil((async () => {
    for (const k of await caches.keys()) if (k.startsWith('crisisroom-declare-') && k !== CACHE) await caches.delete(k);
    await worker.clients.claim();
  })());
});

worker.addEventListener('fetch', (/** @type {FetchEvt} */ e) => {
  const req = e.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== worker.location.origin || !SHELL.includes(url.pathname)) return;
  e.respondWith(networkFirst(req, url.pathname));
});

/**
 * The network's answer, or the cached copy when the network fails or is
 * too slow. A good answer refreshes the cache.
 * @param {Request} req
 * @param {string} path
 * @returns {Promise<Response>}
 */
async function networkFirst(req, path) {
  const cache = await caches.open(CACHE);
  const net = fetch(req).then(async (res) => {
    if (res.ok) await cache.put(path, res.clone());
    return res;
  });
  net.catch(() => {}); // when the cached copy wins the race, a later failure is nobody's business
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  const slow = new Promise((resolve) => { timer = setTimeout(resolve, NETWORK_WAIT_MS); })
    .then(() => cache.match(path))
    .then((hit) => hit ?? net);
  try {
    return await Promise.race([net, slow]);
  } catch (err) {
    const hit = await cache.match(path);
    if (hit) return hit;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
