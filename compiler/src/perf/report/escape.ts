/**
 * Escaping for model-derived strings in HTML and SVG (both as text and inside attribute values).
 * Control characters other than tab/newline are not allowed in XML: they become U+FFFD.
 */
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeXml(s: string): string {
  // eslint-disable-next-line no-control-regex -- replacing the control characters XML forbids
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '\ufffd');
}

/** `s` cut to `n` characters (code points), with an ellipsis when cut. */
export function truncate(s: string, n: number): string {
  const cps = Array.from(s);
  return cps.length <= n ? s : `${cps.slice(0, max1(n - 1)).join('')}…`;
}

function max1(n: number): number {
  return n < 1 ? 1 : n;
}

/**
 * A file name for a model-derived name: characters other than letters, digits, `.`, `-`, `_`
 * become `_`, leading dots too (no hidden files, no `..`), at most 120 characters.
 */
export function safeFileName(name: string): string {
  let base = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, (m) => '_'.repeat(m.length));
  if (base.length > 120) base = base.slice(0, 120);
  return base || '_';
}
