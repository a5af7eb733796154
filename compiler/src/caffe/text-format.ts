import * as protobuf from 'protobufjs';
import { PtqError } from '../errors';

/**
 * A protobuf text-format parser (the `.prototxt` syntax), driven by protobufjs reflection:
 * every field name, enum value and nesting is checked against the message type, so a field
 * the schema does not know (a Caffe fork's extension, a typo) is a PtqError naming the field
 * and the line instead of a crash or a silently ignored setting.
 *
 * The result is a plain object keyed by field name: repeated fields are arrays, enums their
 * value names, 64-bit integers numbers, nested messages objects. `lines` gives the line
 * each message starts on, for later messages about a layer.
 *
 * Syntax accepted (what protobuf's TextFormat prints and parses): `name: value`, `name { … }`
 * or `name < … >` (colon optional before a message), `name: [v1, v2]` lists, `#` comments,
 * `,`/`;` separators, single- or double-quoted strings with C escapes (adjacent strings are
 * joined), decimal/hex/octal integers, floats with exponent and optional `f` suffix,
 * inf/nan, enum values by name or number.
 */

export type TextValue = string | number | boolean | TextMessage | TextValue[];
export interface TextMessage {
  [field: string]: TextValue;
}

export interface ParsedText {
  message: TextMessage;
  /** the line (1-based) on which each parsed message starts */
  lines: WeakMap<object, number>;
}

type TokenKind = 'ident' | 'number' | 'string' | 'symbol' | 'eof';

interface Token {
  kind: TokenKind;
  text: string;
  line: number;
}

const SYMBOLS = new Set(['{', '}', '<', '>', ':', ',', ';', '[', ']', '-']);

class Lexer {
  private pos = 0;
  private line = 1;
  private peeked: Token | undefined;

  constructor(
    private readonly src: string,
    private readonly fail: (line: number, msg: string) => PtqError,
  ) {
    if (src.charCodeAt(0) === 0xfeff) this.pos = 1;
  }

  peek(): Token {
    if (!this.peeked) this.peeked = this.scan();
    return this.peeked;
  }

  next(): Token {
    const t = this.peek();
    this.peeked = undefined;
    return t;
  }

  private scan(): Token {
    const s = this.src;
    for (;;) {
      while (this.pos < s.length) {
        const c = s[this.pos];
        if (c === '\n') this.line++;
        else if (c !== ' ' && c !== '\t' && c !== '\r' && c !== '\f' && c !== '\v') break;
        this.pos++;
      }
      if (s[this.pos] !== '#') break;
      while (this.pos < s.length && s[this.pos] !== '\n') this.pos++;
    }
    const line = this.line;
    if (this.pos >= s.length) return { kind: 'eof', text: '', line };
    const c = s[this.pos];
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(this.pos, this.pos + 256)) as RegExpExecArray;
      this.pos += m[0].length;
      return { kind: 'ident', text: m[0], line };
    }
    if (/[0-9.]/.test(c)) {
      const m = /^(0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fF]?)/.exec(s.slice(this.pos, this.pos + 256));
      if (!m) throw this.fail(line, `unexpected character '${c}'`);
      this.pos += m[0].length;
      return { kind: 'number', text: m[0], line };
    }
    if (c === '"' || c === "'") return { kind: 'string', text: this.scanString(c, line), line };
    if (SYMBOLS.has(c)) {
      this.pos++;
      return { kind: 'symbol', text: c, line };
    }
    throw this.fail(line, `unexpected character '${c}'`);
  }

  private scanString(quote: string, line: number): string {
    const s = this.src;
    let out = '';
    this.pos++;
    for (;;) {
      if (this.pos >= s.length || s[this.pos] === '\n') throw this.fail(line, 'unterminated string');
      const c = s[this.pos++];
      if (c === quote) return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = s[this.pos++];
      const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' };
      if (e in simple) out += simple[e];
      else if (e === 'x' || e === 'X') {
        const m = /^[0-9a-fA-F]{1,2}/.exec(s.slice(this.pos, this.pos + 2));
        if (!m) throw this.fail(line, 'bad \\x escape in string');
        out += String.fromCharCode(parseInt(m[0], 16));
        this.pos += m[0].length;
      } else if (e >= '0' && e <= '7') {
        const m = /^[0-7]{1,3}/.exec(s.slice(this.pos - 1, this.pos + 2)) as RegExpExecArray;
        out += String.fromCharCode(parseInt(m[0], 8));
        this.pos += m[0].length - 1;
      } else throw this.fail(line, `bad escape '\\${e}' in string`);
    }
  }
}

const INT_RANGES: Record<string, [number, number]> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
  int64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  sint64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  sfixed64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  fixed64: [0, Number.MAX_SAFE_INTEGER],
};

/** Parse `text` as a message of `type`. `source` (a file name) prefixes error messages. */
export function parseTextFormat(text: string, type: protobuf.Type, source = '<prototxt>'): ParsedText {
  const lines = new WeakMap<object, number>();
  const stack: { type: protobuf.Type; msg: TextMessage }[] = [];
  const fail = (line: number, msg: string, fix = 'fix the prototxt syntax at that line'): PtqError =>
    new PtqError('E_CAFFE_PROTOTXT', `prototxt '${source}' line ${line}: ${msg}${where()}`, { subject: source, fix });
  /** " (in layer 'conv1')" when inside a named layer. */
  const where = (): string => {
    for (let i = stack.length - 1; i >= 0; i--) {
      const n = stack[i].msg.name;
      if (/LayerParameter$/.test(stack[i].type.name) && typeof n === 'string') return ` (in layer '${n}')`;
    }
    return '';
  };
  const lex = new Lexer(text, fail);

  const parseMessage = (t: protobuf.Type, close: string | undefined, line: number): TextMessage => {
    const msg: TextMessage = {};
    lines.set(msg, line);
    stack.push({ type: t, msg });
    for (;;) {
      const tok = lex.next();
      if (tok.kind === 'eof') {
        if (close) throw fail(tok.line, `missing '${close}' (the message opened on line ${line} is not closed)`);
        break;
      }
      if (tok.kind === 'symbol' && tok.text === close) break;
      if (tok.kind === 'symbol' && (tok.text === ',' || tok.text === ';')) continue;
      if (tok.kind !== 'ident') {
        throw fail(tok.line, tok.kind === 'symbol' && (tok.text === '}' || tok.text === '>') ? `unexpected '${tok.text}' (no message is open)` : `expected a field name, found '${tok.text}'`);
      }
      parseField(t, msg, tok);
    }
    stack.pop();
    return msg;
  };

  const parseField = (t: protobuf.Type, msg: TextMessage, nameTok: Token): void => {
    const field = t.fields[nameTok.text];
    if (!field) {
      throw fail(nameTok.line, `unknown field '${nameTok.text}' in ${t.name}`, `remove '${nameTok.text}' or rename it; nx-ptq reads the Caffe 1.0 schema (compiler/proto/caffe.proto), fields of Caffe forks are not supported`);
    }
    field.resolve();
    const isMessage = field.resolvedType instanceof protobuf.Type;
    let tok = lex.peek();
    const colon = tok.kind === 'symbol' && tok.text === ':';
    if (colon) {
      lex.next();
      tok = lex.peek();
    }
    const values: TextValue[] = [];
    if (tok.kind === 'symbol' && tok.text === '[') {
      lex.next();
      if (!field.repeated) throw fail(tok.line, `field '${field.name}' is not repeated; a [list] is not allowed`);
      if (!(lex.peek().kind === 'symbol' && lex.peek().text === ']')) {
        for (;;) {
          values.push(parseValue(field, isMessage, colon, nameTok.text));
          const sep = lex.next();
          if (sep.kind === 'symbol' && sep.text === ']') break;
          if (!(sep.kind === 'symbol' && sep.text === ',')) throw fail(sep.line, `expected ',' or ']' in the list of '${field.name}', found '${sep.text || 'end of file'}'`);
        }
      } else lex.next();
    } else {
      values.push(parseValue(field, isMessage, colon, nameTok.text));
    }
    if (field.repeated) {
      const list = (msg[field.name] as TextValue[] | undefined) ?? [];
      list.push(...values);
      msg[field.name] = list;
    } else {
      if (field.name in msg) throw fail(nameTok.line, `field '${field.name}' is given twice but is not repeated`, `keep one '${field.name}'`);
      msg[field.name] = values[0];
    }
  };

  const parseValue = (field: protobuf.Field, isMessage: boolean, colon: boolean, name: string): TextValue => {
    const tok = lex.next();
    if (isMessage) {
      if (tok.kind === 'symbol' && (tok.text === '{' || tok.text === '<')) {
        return parseMessage(field.resolvedType as protobuf.Type, tok.text === '{' ? '}' : '>', tok.line);
      }
      throw fail(tok.line, `field '${name}' is a message (${(field.resolvedType as protobuf.Type).name}); expected '{', found '${tok.text || 'end of file'}'`);
    }
    if (!colon) throw fail(tok.line, `expected ':' after '${name}'`);
    if (field.resolvedType instanceof protobuf.Enum) return parseEnum(field.resolvedType, tok, name);
    return parseScalar(field.type, tok, name);
  };

  const parseEnum = (e: protobuf.Enum, tok: Token, name: string): string => {
    if (tok.kind === 'ident') {
      if (tok.text in e.values) return tok.text;
      throw fail(tok.line, `'${tok.text}' is not a value of ${e.name} (field '${name}'; values: ${Object.keys(e.values).join(', ')})`);
    }
    const neg = tok.kind === 'symbol' && tok.text === '-';
    const num = neg ? lex.next() : tok;
    const v = num.kind === 'number' ? Number(num.text) * (neg ? -1 : 1) : NaN;
    const byId = e.valuesById[v];
    if (byId === undefined) throw fail(tok.line, `expected a value of ${e.name} for '${name}', found '${tok.text || 'end of file'}'`);
    return byId;
  };

  const parseScalar = (ptype: string, tok: Token, name: string): TextValue => {
    if (ptype === 'string' || ptype === 'bytes') {
      if (tok.kind !== 'string') throw fail(tok.line, `field '${name}' needs a quoted string, found '${tok.text || 'end of file'}'`);
      let s = tok.text;
      while (lex.peek().kind === 'string') s += lex.next().text;
      return s;
    }
    if (ptype === 'bool') {
      if (tok.kind === 'ident' && /^(true|t|True)$/.test(tok.text)) return true;
      if (tok.kind === 'ident' && /^(false|f|False)$/.test(tok.text)) return false;
      if (tok.kind === 'number' && (tok.text === '0' || tok.text === '1')) return tok.text === '1';
      throw fail(tok.line, `field '${name}' needs true or false, found '${tok.text || 'end of file'}'`);
    }
    const neg = tok.kind === 'symbol' && tok.text === '-';
    const t = neg ? lex.next() : tok;
    if (ptype === 'float' || ptype === 'double') {
      let v: number;
      if (t.kind === 'number') v = /^0[xX]/.test(t.text) ? parseInt(t.text, 16) : parseFloat(t.text.replace(/[fF]$/, ''));
      else if (t.kind === 'ident' && /^(inf|infinity)f?$/i.test(t.text)) v = Infinity;
      else if (t.kind === 'ident' && /^nanf?$/i.test(t.text)) v = NaN;
      else throw fail(t.line, `field '${name}' needs a number, found '${t.text || 'end of file'}'`);
      return neg ? -v : v;
    }
    const range = INT_RANGES[ptype];
    if (!range) throw new Error(`caffe.proto field '${name}' has unsupported type ${ptype}`);
    let v = NaN;
    if (t.kind === 'number') {
      if (/^0[xX]/.test(t.text)) v = parseInt(t.text, 16);
      else if (/^0[0-7]+$/.test(t.text)) v = parseInt(t.text, 8);
      else if (/^[0-9]+$/.test(t.text)) v = Number(t.text);
    }
    if (Number.isNaN(v)) throw fail(t.line, `field '${name}' needs an integer, found '${t.text || 'end of file'}'`);
    if (neg) v = -v;
    if (v < range[0] || v > range[1]) throw fail(t.line, `${v} is out of range for field '${name}' (${ptype})`);
    return v;
  };

  const message = parseMessage(type, undefined, 1);
  return { message, lines };
}
