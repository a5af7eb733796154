import { PtqError } from '../errors';

/**
 * Node lists on the command line, written the way the reference's examples write them
 * (`-q ['Conv_2','Conv_90']`, `-q [['Conv_2'],['Conv_2','Conv_90']]`), after the shell has
 * removed the quotes (`[Conv_2,Conv_90]`), or plainly (`Conv_2,Conv_90`, `Conv_2`):
 *
 *   list  := '[' items? ']' | items          items := item (',' item)*
 *   item  := name | '[' names? ']'           (lists nest one level at most)
 *   name  := 'quoted' | "quoted" | bare      (bare: up to , [ ] ' " — surrounding blanks dropped)
 *
 * Inside quotes anything goes (a backslash escapes the next character).
 */
export type NodeListItem = string | string[];

export function parseNodeList(text: string, what: string, opts: { nested?: boolean } = {}): NodeListItem[] {
  const nested = opts.nested !== false;
  let i = 0;
  const s = text;
  const fail = (msg: string): never => {
    throw new PtqError('E_DEBUG_LIST', `${what}: cannot read the node list ${JSON.stringify(text)}: ${msg}`, {
      subject: what,
      fix: nested ? "write a list like [Conv_2,Conv_90] or a nested list like [[Conv_2],[Conv_2,Conv_90]] (quote it for the shell: '[...]')" : 'write a list like [cosine-similarity,mse] or cosine-similarity,mse',
    });
  };
  const blanks = (): void => {
    while (i < s.length && /\s/.test(s[i])) i++;
  };
  const name = (): string => {
    blanks();
    const q = s[i];
    if (q === "'" || q === '"') {
      i++;
      let out = '';
      while (i < s.length && s[i] !== q) {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        out += s[i++];
      }
      if (i >= s.length) fail(`a quote ${q} is not closed`);
      i++;
      blanks();
      if (out === '') fail('an empty name');
      return out;
    }
    const start = i;
    while (i < s.length && !",[]'\"".includes(s[i])) i++;
    const out = s.slice(start, i).trim();
    if (out === '') fail(i < s.length ? `a name is missing before '${s[i]}' at position ${i + 1}` : 'a name is missing at the end');
    return out;
  };
  const items = (depth: number, close: string | undefined): NodeListItem[] => {
    const out: NodeListItem[] = [];
    blanks();
    if (close && s[i] === close) {
      i++;
      return out;
    }
    for (;;) {
      blanks();
      if (s[i] === '[') {
        if (!nested) fail('nested lists are not allowed here');
        if (depth >= 1) fail('lists nest one level at most');
        i++;
        const inner = items(depth + 1, ']');
        if (!inner.length) fail('an empty inner list []');
        out.push(inner as string[]);
      } else {
        out.push(name());
      }
      blanks();
      if (i >= s.length) {
        if (close) fail(`a '${close}' is missing at the end`);
        return out;
      }
      if (s[i] === ',') {
        i++;
        blanks();
        if (close && s[i] === close) fail(`an item is missing before '${close}'`);
        continue;
      }
      if (close && s[i] === close) {
        i++;
        return out;
      }
      fail(`unexpected '${s[i]}' at position ${i + 1}`);
    }
  };
  blanks();
  if (i >= s.length) fail('it is empty');
  let result: NodeListItem[];
  if (s[i] === '[') {
    i++;
    // `[a,b]` is the flat list; `[[a],[b]]` the nested one
    result = items(0, ']');
    blanks();
    if (i < s.length) fail(`unexpected '${s[i]}' after the closing ']' at position ${i + 1}`);
  } else {
    result = items(0, undefined);
  }
  if (!result.length) fail('it is empty');
  return result;
}

/** Whether a text still has an open '[' (outside quotes): more command-line words belong to it. */
export function unbalanced(text: string): boolean {
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '[') depth++;
    else if (c === ']') depth--;
  }
  return depth > 0 || quote !== undefined;
}

/** A flat list of names (nested lists are an error). */
export function parseNameList(text: string, what: string): string[] {
  return parseNodeList(text, what, { nested: false }) as string[];
}
