import type { Api } from '../api.js';
import { h } from '../dom.js';

/**
 * An image of the API (fetched with the token) as a figure with a caption; an image the browser
 * cannot show (one that does not decode, say) becomes a note instead of a broken-image icon.
 */
export function picture(api: Api, id: string, label: string, attributes: Record<string, string> = {}): HTMLElement {
  const image = h('img', { alt: label, ...attributes });
  const figure = h('figure', {}, image, h('figcaption', {}, label));
  const broken = (): void =>
    image.replaceWith(h('div', { class: 'placeholder error' }, 'this image cannot be displayed'));
  image.addEventListener('error', broken);
  void api.imageUrl(id).then((url) => (image.src = url), broken);
  return figure;
}
