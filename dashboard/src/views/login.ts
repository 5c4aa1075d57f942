import { Api, ApiError } from '../api.js';
import { h, replace } from '../dom.js';
import type { Session } from '../types.js';

/** The sign-in card: log in, or register and then log in. */
export function renderLogin(root: HTMLElement, onSession: (session: Session) => void, notice = ''): void {
  const username = h('input', {
    name: 'username',
    autocomplete: 'username',
    required: true,
    placeholder: 'alice',
    'data-testid': 'username',
  });
  const password = h('input', {
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    'data-testid': 'password',
  });
  const message = h(
    'p',
    { class: notice ? 'message' : 'message hidden', role: 'alert', 'data-testid': 'login-message' },
    notice,
  );
  const busy = (on: boolean): void => {
    for (const button of form.querySelectorAll('button')) button.disabled = on;
  };
  const run = async (register: boolean): Promise<void> => {
    if (!form.reportValidity()) return;
    busy(true);
    message.className = 'message hidden';
    try {
      if (register) await Api.register(username.value, password.value);
      onSession(await Api.login(username.value, password.value));
    } catch (error) {
      message.textContent = error instanceof ApiError ? error.message : 'the server cannot be reached';
      message.className = 'message';
      busy(false);
    }
  };
  const form = h(
    'form',
    {
      class: 'card login',
      onsubmit: (event: Event) => {
        event.preventDefault();
        void run(false);
      },
    },
    h('h1', {}, 'DPIP'),
    h('p', { class: 'muted' }, 'Distributed image processing. Sign in to see your workloads and the workers.'),
    h('label', {}, 'Username', username),
    h('label', {}, 'Password', password),
    message,
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'login' }, 'Log in'),
      h('button', { type: 'button', onclick: () => void run(true), 'data-testid': 'register' }, 'Register'),
    ),
  );
  replace(root, h('main', { class: 'center' }, form));
  username.focus();
}
