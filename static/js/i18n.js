// Every string the page shows, in French (the default) and English. The
// HTML carries keys (data-i18n, data-i18n-label, data-i18n-placeholder);
// scripts call t(). Nothing here is ever parsed as HTML.

/** @typedef {'fr'|'en'} Lang */

const fr = {
  'app.title': 'Salle de crise',
  'lang.label': 'Langue',
  'landing.title': 'Ouvrez votre lien d’invitation',
  'landing.text': 'Pour rejoindre la salle de crise, ouvrez le lien personnel que vous avez reçu (il contient une clé après le signe #). Si vous ne l’avez plus, demandez-en un nouveau à l’organisateur.',
  'nolink.title': 'Lien incomplet',
  'nolink.text': 'Ce lien ne contient pas de clé d’accès. Ouvrez le lien d’invitation complet, tel que vous l’avez reçu.',
  'prejoin.title': 'Avant d’entrer',
  'prejoin.name': 'Votre nom (visible par les participants)',
  'prejoin.namePlaceholder': 'Prénom Nom – service',
  'prejoin.join': 'Rejoindre la salle',
  'prejoin.joining': 'Connexion…',
  'prejoin.cameraOff': 'Caméra coupée',
  'prejoin.loading': 'Ouverture de la caméra et du micro…',
  'media.NotAllowedError': 'L’accès à la caméra et au micro a été refusé. Autorisez-le dans le navigateur, ou entrez sans (vous pourrez voir et écouter).',
  'media.NotFoundError': 'Aucune caméra ni aucun micro trouvés. Vous pouvez entrer pour voir et écouter.',
  'media.NotReadableError': 'La caméra ou le micro est utilisé par une autre application.',
  'media.NotSupportedError': 'Ce navigateur ne donne pas accès à la caméra (une connexion sécurisée HTTPS est nécessaire).',
  'media.other': 'La caméra ou le micro n’a pas pu être ouvert. Vous pouvez entrer pour voir et écouter.',
  'media.screenFailed': 'Le partage d’écran n’a pas pu démarrer.',
  'ctl.mic': 'Micro',
  'ctl.micOff': 'Activer le micro',
  'ctl.micOn': 'Couper le micro',
  'ctl.cam': 'Caméra',
  'ctl.camOff': 'Activer la caméra',
  'ctl.camOn': 'Couper la caméra',
  'ctl.screen': 'Écran',
  'ctl.screenStart': 'Partager l’écran',
  'ctl.screenStop': 'Arrêter le partage',
  'ctl.hand': 'Main',
  'ctl.handRaise': 'Lever la main',
  'ctl.handLower': 'Baisser la main',
  'ctl.people': 'Participants',
  'ctl.chat': 'Discussion',
  'ctl.leave': 'Quitter',
  'ctl.leaveLabel': 'Quitter la salle',
  'ctl.controls': 'Commandes de la réunion',
  'ctl.close': 'Fermer le panneau',
  'side.people': 'Participants',
  'side.chat': 'Discussion',
  'chat.placeholder': 'Écrire un message…',
  'chat.send': 'Envoyer',
  'chat.empty': 'Aucun message pour l’instant.',
  'chat.joined': '{name} a rejoint la salle',
  'chat.left': '{name} a quitté la salle',
  'chat.hand': '{name} lève la main',
  'chat.rateLimited': 'Trop de messages : patientez un instant.',
  'chat.failed': 'Message non envoyé : la connexion est interrompue.',
  'people.you': '(vous)',
  'people.host': 'animateur',
  'people.count': '{n} / {max}',
  'people.handUp': 'main levée',
  'people.micOff': 'micro coupé',
  'people.camOff': 'caméra coupée',
  'people.sharing': 'partage son écran',
  'people.connecting': 'connexion…',
  'tile.you': 'Vous',
  'conn.connecting': 'Connexion…',
  'conn.open': 'Connecté',
  'conn.reconnecting': 'Reconnexion…',
  'conn.closed': 'Déconnecté',
  'banner.reconnecting': 'Connexion perdue. Reconnexion en cours… (tentative {n})',
  'banner.sound': 'Le navigateur a bloqué le son. Touchez ici pour l’activer.',
  'banner.rejoined': 'La session précédente a expiré : vous êtes entré à nouveau dans la salle.',
  'final.left.title': 'Vous avez quitté la salle',
  'final.left.text': 'Vous pouvez la rejoindre à nouveau avec le même lien.',
  'final.rejoin': 'Rejoindre à nouveau',
  'final.retry': 'Réessayer',
  'final.4500.title': 'Lien non valable',
  'final.4500.text': 'Ce lien d’invitation est inconnu ou a été révoqué. Demandez un nouveau lien à l’organisateur.',
  'final.4501.title': 'Lien expiré',
  'final.4501.text': 'Ce lien d’invitation a expiré. Demandez un nouveau lien à l’organisateur.',
  'final.4502.title': 'Salle complète',
  'final.4502.text': 'Le nombre maximal de participants est atteint pour cette salle. Réessayez dans quelques minutes ou contactez l’organisateur.',
  'final.4503.title': 'Page à mettre à jour',
  'final.4503.text': 'Le serveur a été mis à jour. Rechargez la page.',
  'final.4504.title': 'Connexion interrompue',
  'final.4504.text': 'Le serveur a fermé la connexion après des messages invalides ou trop nombreux.',
  'final.4003.title': 'Salle ouverte ailleurs',
  'final.4003.text': 'Votre session a repris dans un autre onglet ou sur un autre appareil.',
  'final.other.title': 'Connexion terminée',
  'final.other.text': 'La connexion au serveur a été fermée ({code}).',
  'final.reload': 'Recharger la page',
};

/** @type {Record<keyof typeof fr, string>} */
const en = {
  'app.title': 'Crisis room',
  'lang.label': 'Language',
  'landing.title': 'Open your invitation link',
  'landing.text': 'To join the crisis room, open the personal link you were sent (it holds a key after the # sign). If you no longer have it, ask the organiser for a new one.',
  'nolink.title': 'Incomplete link',
  'nolink.text': 'This link has no access key. Open the complete invitation link as you received it.',
  'prejoin.title': 'Before you join',
  'prejoin.name': 'Your name (shown to the others)',
  'prejoin.namePlaceholder': 'First Last – department',
  'prejoin.join': 'Join the room',
  'prejoin.joining': 'Connecting…',
  'prejoin.cameraOff': 'Camera off',
  'prejoin.loading': 'Opening camera and microphone…',
  'media.NotAllowedError': 'Access to the camera and microphone was denied. Allow it in the browser, or join without (you will see and hear the others).',
  'media.NotFoundError': 'No camera or microphone found. You can join to see and hear the others.',
  'media.NotReadableError': 'The camera or microphone is in use by another application.',
  'media.NotSupportedError': 'This browser gives no access to the camera (a secure HTTPS connection is required).',
  'media.other': 'The camera or microphone could not be opened. You can join to see and hear the others.',
  'media.screenFailed': 'Screen sharing could not start.',
  'ctl.mic': 'Mic',
  'ctl.micOff': 'Unmute',
  'ctl.micOn': 'Mute',
  'ctl.cam': 'Camera',
  'ctl.camOff': 'Turn camera on',
  'ctl.camOn': 'Turn camera off',
  'ctl.screen': 'Screen',
  'ctl.screenStart': 'Share screen',
  'ctl.screenStop': 'Stop sharing',
  'ctl.hand': 'Hand',
  'ctl.handRaise': 'Raise hand',
  'ctl.handLower': 'Lower hand',
  'ctl.people': 'People',
  'ctl.chat': 'Chat',
  'ctl.leave': 'Leave',
  'ctl.leaveLabel': 'Leave the room',
  'ctl.controls': 'Meeting controls',
  'ctl.close': 'Close the panel',
  'side.people': 'People',
  'side.chat': 'Chat',
  'chat.placeholder': 'Write a message…',
  'chat.send': 'Send',
  'chat.empty': 'No messages yet.',
  'chat.joined': '{name} joined the room',
  'chat.left': '{name} left the room',
  'chat.hand': '{name} raised a hand',
  'chat.rateLimited': 'Too many messages: wait a moment.',
  'chat.failed': 'Message not sent: the connection is down.',
  'people.you': '(you)',
  'people.host': 'host',
  'people.count': '{n} / {max}',
  'people.handUp': 'hand raised',
  'people.micOff': 'muted',
  'people.camOff': 'camera off',
  'people.sharing': 'sharing the screen',
  'people.connecting': 'connecting…',
  'tile.you': 'You',
  'conn.connecting': 'Connecting…',
  'conn.open': 'Connected',
  'conn.reconnecting': 'Reconnecting…',
  'conn.closed': 'Disconnected',
  'banner.reconnecting': 'Connection lost. Reconnecting… (attempt {n})',
  'banner.sound': 'The browser blocked the sound. Tap here to turn it on.',
  'banner.rejoined': 'Your previous session expired: you have joined the room again.',
  'final.left.title': 'You left the room',
  'final.left.text': 'You can join again with the same link.',
  'final.rejoin': 'Join again',
  'final.retry': 'Try again',
  'final.4500.title': 'Invalid link',
  'final.4500.text': 'This invitation link is unknown or has been revoked. Ask the organiser for a new link.',
  'final.4501.title': 'Link expired',
  'final.4501.text': 'This invitation link has expired. Ask the organiser for a new link.',
  'final.4502.title': 'Room full',
  'final.4502.text': 'This room has reached its maximum number of participants. Try again in a few minutes or contact the organiser.',
  'final.4503.title': 'Page out of date',
  'final.4503.text': 'The server was updated. Reload the page.',
  'final.4504.title': 'Connection closed',
  'final.4504.text': 'The server closed the connection after invalid or too many messages.',
  'final.4003.title': 'Room opened elsewhere',
  'final.4003.text': 'Your session resumed in another tab or on another device.',
  'final.other.title': 'Connection ended',
  'final.other.text': 'The connection to the server was closed ({code}).',
  'final.reload': 'Reload the page',
};

/** @typedef {keyof typeof fr} Key */

const TABLES = /** @type {Record<Lang, Record<Key, string>>} */ ({ fr, en });
const STORAGE_KEY = 'crisisroom.lang';

export class I18n {
  constructor() {
    /** @type {Lang} */
    this.lang = 'fr';
    /** @type {Array<() => void>} */
    this.listeners = [];
    try {
      const saved = localStorage.getItem(STORAGE_KEY);
      if (saved === 'fr' || saved === 'en') this.lang = saved;
    } catch {
      // Storage can be disabled (private mode): French it is.
    }
  }

  /**
   * @param {string} key  a Key, or a computed one (falls back to the key)
   * @param {Record<string, string|number>} [params]
   * @returns {string}
   */
  t(key, params) {
    const table = TABLES[this.lang];
    const s = /** @type {Record<string, string>} */ (table)[key] ?? /** @type {Record<string, string>} */ (fr)[key] ?? key;
    if (!params) return s;
    return s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
  }

  /** @param {string} key */
  has(key) {
    return key in TABLES[this.lang];
  }

  /** @param {Lang} lang */
  set(lang) {
    this.lang = lang;
    try {
      localStorage.setItem(STORAGE_KEY, lang);
    } catch {
      // not persisted; fine
    }
    for (const f of this.listeners) f();
  }

  /** @param {() => void} f */
  onChange(f) {
    this.listeners.push(f);
  }

  /**
   * Fills every keyed element under root. Text goes through textContent and
   * attributes through setAttribute: no markup is ever interpreted.
   * @param {ParentNode & Node} root
   */
  apply(root) {
    if (root instanceof Document) root.documentElement.lang = this.lang;
    for (const el of root.querySelectorAll('[data-i18n]')) {
      el.textContent = this.t(/** @type {string} */ (el.getAttribute('data-i18n')));
    }
    for (const el of root.querySelectorAll('[data-i18n-label]')) {
      const s = this.t(/** @type {string} */ (el.getAttribute('data-i18n-label')));
      el.setAttribute('aria-label', s);
      el.setAttribute('title', s);
    }
    for (const el of root.querySelectorAll('[data-i18n-placeholder]')) {
      el.setAttribute('placeholder', this.t(/** @type {string} */ (el.getAttribute('data-i18n-placeholder'))));
    }
  }
}
