'use strict';
// A request's targeting attributes (TARGETING.md, "Request attributes"), read as the
// sidecar reads them (sidecar/attributes.py): header names in any case, the first value
// of a header sent several times; OIP request parameters compared as text (a string as
// is, a bool as true/false, an integer in decimal, a double as Python's repr).

const PARAM_PREFIX = 'param.';
const TYPED = ['bool_param', 'int64_param', 'string_param', 'double_param', 'uint64_param'];

/** A double as Python's repr(float) writes it: the shortest round-trip digits, fixed
 *  notation for exponents -4..15 with at least one fractional digit, else d.ddde+XX. */
function pythonFloat(x) {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mantissa, exp] = Math.abs(x).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const point = Number(exp) + 1; // the decimal point's place after the first digit
  if (point > -4 && point <= 16) {
    if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
    if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
    return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  const e = point - 1;
  const frac = digits.length > 1 ? `.${digits.slice(1)}` : '';
  return `${sign}${digits[0]}${frac}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}

/** A number as it is written in JSON text; `integer` when it has no fraction or exponent
 *  (Python's json reads it as int, else as float). */
class JsonNumber {
  constructor(text) {
    this.text = text;
    this.integer = /^-?[0-9]+$/.test(text);
  }

  toString() {
    return this.integer ? BigInt(this.text).toString() : pythonFloat(Number(this.text));
  }
}

/** One InferParameter as @grpc/proto-loader gives it (`parameter_choice` with oneofs, or
 *  the one *_param field set), as the sidecar reads the wire; undefined: not one. */
function typedParam(v) {
  const choice = v.parameter_choice !== undefined ? v.parameter_choice
    : TYPED.find((k) => v[k] !== undefined && v[k] !== null);
  if (choice === undefined) return Object.keys(v).length === 0 ? null : undefined;
  if (!TYPED.includes(choice)) return null; // no value set: the parameter is absent
  const x = v[choice];
  if (choice === 'bool_param') return x ? 'true' : 'false';
  if (choice === 'string_param') return String(x);
  if (choice === 'double_param') return pythonFloat(Number(x));
  return BigInt(typeof x === 'object' ? x.toString() : x).toString(); // int64/uint64, Long
}

/**
 * A parameter value as targeting compares it, null when it has none (null, a list, an
 * object). JSON numbers read from text (parametersOf a body) keep the int/float
 * distinction; a plain JS number that is an integer reads as an integer ("1", where a
 * JSON body's 1.0 reads "1.0": pass the body text, or {double_param: 1}, to get that).
 */
function paramText(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    return Number.isSafeInteger(v) && !Object.is(v, -0) ? String(v) : pythonFloat(v);
  }
  if (v instanceof JsonNumber) return v.toString();
  if (typeof v === 'object' && !Array.isArray(v)) {
    const t = typedParam(v);
    return t === undefined ? null : t;
  }
  return null;
}

const { parseJson } = require('./json_text');

/** The `parameters` of an OIP REST request body (text, a Buffer or a parsed object), as
 *  name -> text; a body that is not JSON, or has no parameters object, has none. */
function parametersOf(body) {
  let parsed = body;
  if (typeof body === 'string' || Buffer.isBuffer(body) || body instanceof Uint8Array) {
    parsed = parseJson(body, JsonNumber);
    if (parsed === undefined) return new Map();
  }
  const params = parsed && typeof parsed === 'object' && !Array.isArray(parsed)
    ? (parsed instanceof Map ? parsed.get('parameters') : parsed.parameters) : undefined;
  return textMap(params);
}

function entriesOf(obj) {
  if (obj instanceof Map) return [...obj.entries()];
  return Object.entries(obj);
}

function textMap(params) {
  const out = new Map();
  if (!params || typeof params !== 'object' || Array.isArray(params)) return out;
  for (const [k, v] of entriesOf(params)) {
    const t = paramText(v);
    if (t !== null) out.set(String(k), t);
  }
  return out;
}

/** Header pairs from an object ({name: value | [values]}), a Map, an array of [name,
 *  value] pairs, or grpc.Metadata; names lower-cased, the first value of a name wins,
 *  binary values (Buffers, as gRPC -bin metadata) left out. */
function headerMap(headers) {
  const out = new Map();
  if (!headers) return out;
  let pairs;
  if (typeof headers.getMap === 'function') pairs = Object.entries(headers.getMap());
  else if (Array.isArray(headers)) pairs = headers;
  else pairs = entriesOf(headers);
  for (const [k, raw] of pairs) {
    const v = Array.isArray(raw) ? raw[0] : raw;
    const name = String(k).toLowerCase();
    if (typeof v === 'string' && !out.has(name)) out.set(name, v);
  }
  return out;
}

/** A request's attributes: `get(attribute)` is the getter a Matcher takes. `params` is
 *  an object or Map of parameters (values as paramText reads them); `body` an OIP REST
 *  body (text/Buffer/object) whose `parameters` are read when `params` is not given. */
class RequestAttributes {
  constructor({ headers = null, params = null, body = null } = {}) {
    this.headers = headerMap(headers);
    this.params = params !== null && params !== undefined ? textMap(params)
      : (body !== null && body !== undefined ? parametersOf(body) : new Map()); // eslint-disable-line no-nested-ternary
    this.get = this.get.bind(this);
  }

  get(attribute) {
    const v = attribute.startsWith(PARAM_PREFIX)
      ? this.params.get(attribute.slice(PARAM_PREFIX.length))
      : this.headers.get(attribute);
    return v === undefined ? null : v;
  }
}

const NONE = new RequestAttributes();

module.exports = {
  RequestAttributes, NONE, paramText, parametersOf, pythonFloat, headerMap, JsonNumber,
};
