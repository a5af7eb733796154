/**
 * Filling the reference's YAML templates (compiler/src/config/templates) line by line, so the
 * generated model.yaml keeps the template's comments and order: a key's line is replaced by
 * its value, commented out when the model does not need it, or appended to its group when the
 * template has no line for it.
 */

/** A YAML value: strings are single-quoted (the reference's style), numbers and booleans bare. */
export type YamlValue = string | number | boolean;

export function yamlScalar(v: YamlValue): string {
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  return `'${v.replace(/'/g, "''")}'`;
}

/** The lines of `group:` (top level), as [first line after the header, end) indices. */
function groupRange(lines: string[], group: string): [number, number] {
  const start = lines.findIndex((l) => new RegExp(`^#?\\s*${escape(group)}\\s*:`).test(l));
  if (start < 0) throw new Error(`template has no group '${group}'`);
  let end = start + 1;
  while (end < lines.length && !/^\S/.test(lines[end])) end++;
  // a comment at column 0 ends the group too, unless the group continues after it
  return [start + 1, end];
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Sets `group.key` to `value` (undefined: comment the key out). Keys the template has, written
 * or commented out, are edited in place; others are appended at the end of the group.
 */
export function setKey(lines: string[], group: string, key: string, value: YamlValue | undefined): void {
  const [from, to] = groupRange(lines, group);
  const re = new RegExp(`^(\\s+)(#\\s*)?${escape(key)}\\s*:`);
  let at = -1;
  for (let i = from; i < to; i++) {
    if (re.test(lines[i])) {
      at = i;
      if (!/^\s+#/.test(lines[i])) break; // prefer the written line over a commented one
    }
  }
  if (value === undefined) {
    if (at >= 0 && !/^\s+#/.test(lines[at])) lines[at] = lines[at].replace(/^(\s+)/, '$1# ');
    return;
  }
  const text = `${key}: ${yamlScalar(value)}`;
  if (at >= 0) {
    const indent = /^(\s+)/.exec(lines[at])![1];
    lines[at] = `${indent}${text}`;
    return;
  }
  let end = to;
  while (end > from && lines[end - 1].trim() === '') end--;
  lines.splice(end, 0, `  ${text}`);
}

/** Uncomments a group that the template holds only as comments (`#custom_op:`). */
export function ensureGroup(lines: string[], group: string): void {
  const i = lines.findIndex((l) => new RegExp(`^#\\s*${escape(group)}\\s*:`).test(l));
  if (i >= 0) lines[i] = `${group}:`;
  else if (!lines.some((l) => new RegExp(`^${escape(group)}\\s*:`).test(l))) lines.push('', `${group}:`);
}

/** Replaces the template's leading comment block by `header` lines. */
export function replaceHeader(lines: string[], header: string[]): string[] {
  let i = 0;
  while (i < lines.length && lines[i].startsWith('#')) i++;
  return [...header.map((h) => (h ? `# ${h}` : '#')), ...lines.slice(i)];
}
