// A destructive button that asks twice in place: the first press arms it
// (it turns red and says what will happen), the second acts. No browser
// dialog: it would block the page, and an automated browser with it.

/** How long an armed button waits for its confirmation. */
const CONFIRM_MS = 5000;

/**
 * @param {{label: string, confirmLabel: string, cancelLabel: string, className: string,
 *   onConfirm: () => Promise<void>|void}} o
 *   className: of the main button (the cancel button gets className-cancel)
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
    act.dataset.armed = '';
    act.textContent = o.label;
    cancel.hidden = true;
  };
  act.addEventListener('click', () => {
    if (act.dataset.armed !== 'true') {
      act.dataset.armed = 'true';
      act.textContent = o.confirmLabel;
      cancel.hidden = false;
      timer = setTimeout(disarm, CONFIRM_MS);
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
