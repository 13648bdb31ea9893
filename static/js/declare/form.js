// The declaration form: date, place (four big buttons), count (a big
// stepper), optional note, then a confirmation step that repeats what will
// be sent in words. The place picker and the stepper are reused by the
// correction editor of the history.

import { PLACES, placeLabel, isPlace, frenchDay, isDay, addDays, find } from './common.js';

/**
 * @typedef {import('./common.js').Me} Me
 * @typedef {import('./common.js').Place} Place
 * @typedef {import('./common.js').FieldError} FieldError
 *
 * @typedef {object} FormValues
 * @property {string} date
 * @property {Place|''} place
 * @property {number} count   NaN when the box does not hold a number
 * @property {string} note
 */

export const MAX_NOTE = 500;

/** Four toggle buttons, one pressed at most. */
export class PlacePicker {
  /**
   * @param {HTMLElement} root  holds button[data-place], or gets them
   * @param {() => void} onChange
   */
  constructor(root, onChange) {
    if (!root.querySelector('button[data-place]')) root.append(...placeButtons());
    this.buttons = /** @type {HTMLButtonElement[]} */ ([...root.querySelectorAll('button[data-place]')]);
    /** @type {Place|''} */
    this.value = '';
    for (const b of this.buttons) {
      b.addEventListener('click', () => {
        this.set(/** @type {Place} */ (b.dataset.place));
        onChange();
      });
    }
  }

  /** @param {Place|''} v */
  set(v) {
    this.value = v;
    for (const b of this.buttons) b.setAttribute('aria-pressed', String(b.dataset.place === v));
  }
}

/** A number box between − and + buttons, for thumbs. */
export class Stepper {
  /**
   * @param {HTMLElement} root  holds .minus, .plus and input
   * @param {number} min
   * @param {number} max
   * @param {() => void} onChange
   */
  constructor(root, min, max, onChange) {
    this.input = find(root, 'input', HTMLInputElement);
    this.minus = find(root, '.minus', HTMLButtonElement);
    this.plus = find(root, '.plus', HTMLButtonElement);
    this.min = min;
    this.max = max;
    this.input.min = String(min);
    this.input.max = String(max);
    this.minus.addEventListener('click', () => { this.set((this.valueOr(min + 1)) - 1); onChange(); });
    this.plus.addEventListener('click', () => { this.set(this.valueOr(min - 1) + 1); onChange(); });
    this.input.addEventListener('input', () => { this.sync(); onChange(); });
  }

  /** @param {number} fallback */
  valueOr(fallback) {
    const n = this.value;
    return Number.isFinite(n) ? n : fallback;
  }

  get value() {
    const s = this.input.value.trim();
    return /^\d+$/.test(s) ? Number(s) : NaN;
  }

  /** @param {number} n */
  set(n) {
    this.input.value = String(Math.min(this.max, Math.max(this.min, n)));
    this.sync();
  }

  sync() {
    const n = this.value;
    this.minus.disabled = Number.isFinite(n) && n <= this.min;
    this.plus.disabled = Number.isFinite(n) && n >= this.max;
  }
}

/**
 * Shows each error next to its field ([data-err=field]); errors of unknown
 * fields go to [data-err="_"].
 * @param {HTMLElement} root
 * @param {FieldError[]} errors
 */
export function showErrors(root, errors) {
  clearErrors(root);
  for (const e of errors) {
    const slot = root.querySelector(`[data-err="${CSS.escape(e.field)}"]`) ?? root.querySelector('[data-err="_"]');
    if (!(slot instanceof HTMLElement)) continue;
    slot.textContent = slot.textContent ? `${slot.textContent} ${e.message}` : e.message;
    slot.hidden = false;
    root.querySelector(`[data-field="${CSS.escape(e.field)}"]`)?.setAttribute('aria-invalid', 'true');
  }
  const first = root.querySelector('[data-err]:not([hidden])');
  first?.scrollIntoView({ block: 'center' });
}

/** @param {HTMLElement} root */
export function clearErrors(root) {
  for (const s of root.querySelectorAll('[data-err]')) {
    s.textContent = '';
    /** @type {HTMLElement} */ (s).hidden = true;
  }
  for (const f of root.querySelectorAll('[aria-invalid]')) f.removeAttribute('aria-invalid');
}

/**
 * @param {string} field
 * @param {string} message
 * @returns {FieldError}
 */
function fe(field, message) {
  return { field, code: 'client', message, message_en: message };
}

/**
 * The server's rules, checked before anything is kept, so that an offline
 * declaration is not found invalid hours later. The server checks again.
 * @param {FormValues} v
 * @param {Me} me
 * @param {string} today
 * @returns {FieldError[]}
 */
export function validate(v, me, today) {
  /** @type {FieldError[]} */
  const errs = [];
  if (!isDay(v.date)) errs.push(fe('date', 'Date invalide (format AAAA-MM-JJ).'));
  else if (v.date > today) errs.push(fe('date', 'La date ne peut pas être dans le futur.'));
  else if (me.event_start && v.date < me.event_start) {
    errs.push(fe('date', `La date est antérieure au début de l’événement (${frenchDay(me.event_start)}).`));
  }
  if (!isPlace(v.place)) errs.push(fe('place', 'Choisissez le lieu : domicile, EHPAD, hôpital ou autre.'));
  if (!Number.isInteger(v.count) || v.count < 1 || v.count > me.max_count) {
    errs.push(fe('count', `Le nombre doit être compris entre 1 et ${me.max_count}.`));
  }
  if ([...v.note].length > MAX_NOTE) errs.push(fe('note', `La note est limitée à ${MAX_NOTE} caractères.`));
  return errs;
}

/** @param {FormValues} v */
export function summary(v) {
  const n = v.count === 1 ? '1 décès' : `${v.count} décès`;
  return `${n} · ${placeLabel(v.place)} · ${frenchDay(v.date, true)}`;
}

/** The main form. */
export class DeclareForm {
  /**
   * @param {HTMLFormElement} form
   * @param {Me} me
   * @param {() => string} today
   * @param {(v: FormValues, key: string|null) => Promise<void>} onConfirm
   *        key: the outbox item being fixed, or null for a new declaration
   */
  constructor(form, me, today, onConfirm) {
    this.form = form;
    this.me = me;
    this.today = today;
    this.onConfirm = onConfirm;
    /** @type {string|null} outbox key of the item being fixed */
    this.editing = null;
    this.date = find(form, 'input[name=date]', HTMLInputElement);
    this.note = find(form, 'textarea[name=note]', HTMLTextAreaElement);
    this.submit = find(form, 'button[type=submit]', HTMLButtonElement);
    this.confirmBox = find(form, '.confirm', HTMLElement);
    this.confirmText = find(form, '.confirm-text', HTMLElement);
    this.confirmYes = find(form, '.confirm-yes', HTMLButtonElement);
    this.confirmNo = find(form, '.confirm-no', HTMLButtonElement);
    this.noteCount = find(form, '.note-count', HTMLElement);
    this.dayButtons = /** @type {HTMLButtonElement[]} */ ([...form.querySelectorAll('button[data-day]')]);
    const changed = () => this.changed();
    this.places = new PlacePicker(find(form, '.places', HTMLElement), changed);
    this.count = new Stepper(find(form, '.stepper', HTMLElement), 1, me.max_count, changed);
    this.date.addEventListener('input', changed);
    this.note.maxLength = MAX_NOTE;
    this.note.addEventListener('input', changed);
    for (const b of this.dayButtons) {
      b.addEventListener('click', () => {
        this.date.value = addDays(this.today(), Number(b.dataset.day));
        changed();
      });
    }
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.ask();
    });
    this.confirmYes.addEventListener('click', () => void this.confirm());
    this.confirmNo.addEventListener('click', () => this.closeConfirm(true));
    this.reset();
  }

  /** @returns {FormValues} */
  values() {
    return { date: this.date.value, place: this.places.value, count: this.count.value, note: this.note.value.trim() };
  }

  /** Back to a blank declaration for today. */
  reset() {
    this.editing = null;
    this.date.value = this.today();
    this.places.set('');
    this.count.set(1);
    this.note.value = '';
    this.form.dataset.editing = '';
    clearErrors(this.form);
    this.closeConfirm(false);
    this.changed();
  }

  /**
   * Loads a refused outbox item for correction; confirming replaces it.
   * @param {string} key
   * @param {FormValues} v
   * @param {FieldError[]} errors
   */
  load(key, v, errors) {
    this.reset();
    this.editing = key;
    this.form.dataset.editing = key;
    this.date.value = v.date;
    this.places.set(v.place);
    this.count.set(v.count);
    this.note.value = v.note;
    this.changed();
    showErrors(this.form, errors);
    this.form.scrollIntoView({ block: 'start' });
  }

  /** @param {FieldError[]} errors */
  showErrors(errors) {
    this.closeConfirm(false);
    showErrors(this.form, errors);
  }

  changed() {
    const today = this.today();
    this.date.max = today;
    if (this.me.event_start) this.date.min = this.me.event_start;
    for (const b of this.dayButtons) {
      b.setAttribute('aria-pressed', String(this.date.value === addDays(today, Number(b.dataset.day))));
    }
    this.noteCount.textContent = `${[...this.note.value].length} / ${MAX_NOTE}`;
    // Anything changed after "Déclarer" must be confirmed again.
    if (!this.confirmBox.hidden) this.closeConfirm(false);
  }

  ask() {
    const v = this.values();
    const errs = validate(v, this.me, this.today());
    if (errs.length) {
      showErrors(this.form, errs);
      return;
    }
    clearErrors(this.form);
    this.confirmText.textContent = summary(v);
    this.confirmBox.hidden = false;
    this.submit.hidden = true;
    this.confirmYes.focus();
  }

  /** @param {boolean} focus */
  closeConfirm(focus) {
    this.confirmBox.hidden = true;
    this.submit.hidden = false;
    this.confirmYes.disabled = false;
    if (focus) this.submit.focus();
  }

  async confirm() {
    const v = this.values();
    const errs = validate(v, this.me, this.today());
    if (errs.length) {
      this.showErrors(errs);
      return;
    }
    this.confirmYes.disabled = true; // one tap, one declaration
    try {
      await this.onConfirm(v, this.editing);
    } finally {
      this.confirmYes.disabled = false;
    }
  }
}

/** The place buttons, in display order. */
function placeButtons() {
  return PLACES.map(([value, label]) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'place';
    b.dataset.place = value;
    b.textContent = label;
    b.setAttribute('aria-pressed', 'false');
    return b;
  });
}
