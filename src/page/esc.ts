// HTML escaping and ids shared by the page's parts.

export const esc = (s: unknown) =>
  String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export const linkify = (s: string) => esc(s).replace(/https?:\/\/[^\s<)"]+/g, (u) => `<a href="${u}">${u}</a>`);

export const slug = (s: string) => s.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '');
