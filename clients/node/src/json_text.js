'use strict';
// JSON text read as the sidecar's Python json.loads reads it, for OIP request parameters:
// numbers keep their text (an integer and a double differ: 1 vs 1.0), NaN / Infinity /
// -Infinity are accepted, a key given twice keeps its last value, objects are Maps (any
// key is safe), control characters inside strings are refused. Bytes are UTF-8; a BOM is
// skipped (also at the start of a string: the text of the body's bytes). Anything else
// that is not JSON gives undefined.

const WS = new Set([' ', '\t', '\n', '\r']);
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?/y;
const ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const MAX_DEPTH = 900; // Python's recursion limit is near 1000
// Python refuses to read an integer of more digits (sys.get_int_max_str_digits()): the
// sidecar then finds no parameters in the body at all.
const MAX_INT_DIGITS = 4300;

class Bad extends Error {}

class Reader {
  constructor(text, NumberType) {
    this.s = text;
    this.i = 0;
    this.NumberType = NumberType;
  }

  ws() {
    while (this.i < this.s.length && WS.has(this.s[this.i])) this.i += 1;
  }

  literal(word, value) {
    if (!this.s.startsWith(word, this.i)) throw new Bad();
    this.i += word.length;
    return value;
  }

  value(depth) {
    if (depth > MAX_DEPTH) throw new Bad();
    this.ws();
    const c = this.s[this.i];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    if (c === 't') return this.literal('true', true);
    if (c === 'f') return this.literal('false', false);
    if (c === 'n') return this.literal('null', null);
    if (c === 'N') return this.literal('NaN', new this.NumberType('NaN'));
    if (c === 'I') return this.literal('Infinity', new this.NumberType('Infinity'));
    if (c === '-' && this.s.startsWith('-Infinity', this.i)) {
      return this.literal('-Infinity', new this.NumberType('-Infinity'));
    }
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (!m) throw new Bad();
    this.i += m[0].length;
    if (/^-?[0-9]+$/.test(m[0]) && m[0].replace('-', '').length > MAX_INT_DIGITS) throw new Bad();
    return new this.NumberType(m[0]);
  }

  object(depth) {
    const out = new Map();
    this.i += 1;
    this.ws();
    if (this.s[this.i] === '}') {
      this.i += 1;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') throw new Bad();
      const key = this.string();
      this.ws();
      if (this.s[this.i] !== ':') throw new Bad();
      this.i += 1;
      out.set(key, this.value(depth + 1));
      this.ws();
      const c = this.s[this.i];
      this.i += 1;
      if (c === '}') return out;
      if (c !== ',') throw new Bad();
    }
  }

  array(depth) {
    const out = [];
    this.i += 1;
    this.ws();
    if (this.s[this.i] === ']') {
      this.i += 1;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.s[this.i];
      this.i += 1;
      if (c === ']') return out;
      if (c !== ',') throw new Bad();
    }
  }

  string() {
    let out = '';
    this.i += 1;
    for (;;) {
      const c = this.s[this.i];
      if (c === undefined || c < ' ') throw new Bad();
      this.i += 1;
      if (c === '"') return out;
      if (c !== '\\') {
        out += c;
      } else {
        const e = this.s[this.i];
        this.i += 1;
        if (e === 'u') {
          const hex = this.s.slice(this.i, this.i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new Bad();
          out += String.fromCharCode(parseInt(hex, 16));
          this.i += 4;
        } else if (Object.hasOwn(ESCAPES, e)) {
          out += ESCAPES[e];
        } else {
          throw new Bad();
        }
      }
    }
  }
}

/** The value of JSON text (a string, Buffer or Uint8Array), numbers as
 *  `new NumberType(text)`; undefined when it is not JSON. */
function parseJson(input, NumberType) {
  let text = input;
  if (typeof input === 'string') {
    if (text[0] === '\ufeff') text = text.slice(1); // the body's bytes as decoded text
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(input);
    } catch (err) {
      return undefined;
    }
  }
  const r = new Reader(text, NumberType);
  try {
    const v = r.value(0);
    r.ws();
    return r.i === text.length ? v : undefined;
  } catch (err) {
    if (err instanceof Bad) return undefined;
    throw err;
  }
}

module.exports = { parseJson };
