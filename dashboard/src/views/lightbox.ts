import type { Api } from '../api.js';
import { h } from '../dom.js';
import { picture } from './picture.js';

function large(api: Api, id: string | null | undefined, label: string, testId: string): HTMLElement {
  return id
    ? picture(api, id, label, { 'data-testid': testId })
    : h('figure', {}, h('div', { class: 'placeholder' }, 'not filtered yet'), h('figcaption', {}, label));
}

/** The original and its filtered image side by side, large; closes on click, Escape or the button. */
export function openLightbox(
  api: Api,
  originalId: string,
  filteredId: string | null | undefined,
  caption: string,
): void {
  const close = (): void => {
    overlay.remove();
    document.removeEventListener('keydown', onKey);
  };
  const onKey = (event: KeyboardEvent): void => {
    if (event.key === 'Escape') close();
  };
  const overlay = h(
    'div',
    {
      class: 'lightbox',
      role: 'dialog',
      'aria-modal': 'true',
      'aria-label': caption,
      'data-testid': 'lightbox',
      onclick: (event: Event) => event.target === overlay && close(),
    },
    h(
      'div',
      { class: 'pair' },
      large(api, originalId, 'Before', 'lightbox-original'),
      large(api, filteredId, 'After', 'lightbox-filtered'),
    ),
    h('p', { class: 'caption' }, caption),
    h('button', { class: 'close', 'aria-label': 'close', onclick: close, 'data-testid': 'lightbox-close' }, '×'),
  );
  document.addEventListener('keydown', onKey);
  document.body.appendChild(overlay);
}
