/**
 * The few encoders of the WebAssembly binary format that our generated modules need
 * (kernels/wasm-simd.ts, runtime/bin-wasm.ts): LEB128 integers, vectors, names, sections.
 */

/** unsigned LEB128 */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/** signed LEB128 */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** a vector: its length, then the items */
export const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
/** a name (ASCII) */
export const wasmName = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
/** a section: id, byte size, body */
export const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

/** A function body: its local declarations (runs of one type grouped), the code, `end`; size-prefixed. */
export function functionBody(localTypes: readonly number[], code: readonly number[]): number[] {
  const groups: number[][] = [];
  for (let i = 0; i < localTypes.length; ) {
    let j = i;
    while (j < localTypes.length && localTypes[j] === localTypes[i]) j++;
    groups.push([...uleb(j - i), localTypes[i]]);
    i = j;
  }
  const body = [...vec(groups), ...code, 0x0b];
  return [...uleb(body.length), ...body];
}
