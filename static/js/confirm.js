// A destructive button that asks twice in place: the first press arms it
// (it turns red and says what will happen), the second acts. No browser
// dialog: it would block the page, and an automated browser with it.

/** How long an armed button waits for its confirmation. */
const CONFIRM_MS = 5000;

/**
 * Armed buttons by key, until when: a list that is drawn again (a refresh,
 * a language change) between the two presses gives back an armed button,
 * so the second press still confirms.
 * @type {Map<string, number>}
 */
const armedUntil = new Map();

/**
 * @param {{label: string, confirmLabel: string, cancelLabel: string, className: string,
 *   key?: string, onConfirm: () => Promise<void>|void}} o
 *   className: of the main button (the cancel button gets className-cancel);
 *   key: what the button acts on (its armed state outlives a redraw)
 * @returns {HTMLElement} a row holding both buttons
 */
export function twoStepButton(o) {
  const row = document.createElement('p');
  row.className = 'two-step';
  const act = document.createElement('button');
  act.type = 'button';
  act.className = o.className;
  act.textContent = o.label;
  const cancel = document.createElement('button');
  cancel.type = 'button';
  cancel.className = `${o.className}-cancel`;
  cancel.textContent = o.cancelLabel;
  cancel.hidden = true;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  const disarm = () => {
    clearTimeout(timer);
    if (o.key) armedUntil.delete(o.key);
    act.dataset.armed = '';
    act.textContent = o.label;
    cancel.hidden = true;
  };
  /** @param {number} until */
  const arm = (until) => {
    if (o.key) armedUntil.set(o.key, until);
    act.dataset.armed = 'true';
    act.textContent = o.confirmLabel;
    cancel.hidden = false;
    timer = setTimeout(disarm, until - Date.now());
  };
  const until = o.key ? armedUntil.get(o.key) ?? 0 : 0;
  if (until > Date.now()) arm(until);
  act.addEventListener('click', () => {
    if (act.dataset.armed !== 'true') {
      arm(Date.now() + CONFIRM_MS);
      return;
    }
    clearTimeout(timer);
    act.disabled = true;
    cancel.hidden = true;
    void Promise.resolve(o.onConfirm()).finally(() => { act.disabled = false; disarm(); });
  });
  cancel.addEventListener('click', disarm);
  row.append(act, cancel);
  return row;
}
