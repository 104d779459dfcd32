'use strict';
// Targeting conditions (targeting.proto; TARGETING.md is the specification): validation,
// the canonical text form, semantic versions and the compiled matcher, as the reference
// targeting.py beside the contract. A matcher takes `get(attribute)` returning the
// request's value as text or null (attributes.js builds it from headers and parameters).

const MAX_CONDITIONS = 20;
const MAX_VALUES = 100;
const MAX_VALUE_CHARS = 256;
const MAX_ATTRIBUTE_CHARS = 128;
const PARAM_PREFIX = 'param.';

const OPS = [
  'OPERATOR_UNSPECIFIED', 'OPERATOR_EQ', 'OPERATOR_NEQ', 'OPERATOR_IN', 'OPERATOR_NOT_IN',
  'OPERATOR_VERSION_GT', 'OPERATOR_VERSION_GTE', 'OPERATOR_VERSION_LT',
  'OPERATOR_VERSION_LTE', 'OPERATOR_EXISTS', 'OPERATOR_NOT_EXISTS',
];
const SYMBOLS = {
  OPERATOR_EQ: '=', OPERATOR_NEQ: '!=', OPERATOR_VERSION_GT: '>',
  OPERATOR_VERSION_GTE: '>=', OPERATOR_VERSION_LT: '<', OPERATOR_VERSION_LTE: '<=',
};
const VERSION_OPS = new Set(['OPERATOR_VERSION_GT', 'OPERATOR_VERSION_GTE',
  'OPERATOR_VERSION_LT', 'OPERATOR_VERSION_LTE']);
const LISTS = new Set(['OPERATOR_IN', 'OPERATOR_NOT_IN']);
const NO_VALUE = new Set(['OPERATOR_EXISTS', 'OPERATOR_NOT_EXISTS']);

const BARE = /^[A-Za-z0-9._:/@+*-]+$/;
const HEADER = /^[a-z0-9_.-]+$/;
const PARAM = /^[A-Za-z0-9_.-]+$/;
const IDENT = /^[A-Za-z0-9-]+$/;
const DIGITS = /^[0-9]+$/;

/** A condition that is not acceptable; `field` names the part (`targeting[1].values`). */
class ConditionError extends RangeError {
  constructor(detail, field) {
    super(`${field}: ${detail}`);
    this.name = 'ConditionError';
    this.field = field;
    this.detail = detail;
  }
}

const chars = (s) => [...s].length; // code points, as Python's len()
// A text in messages as Python's repr writes it (messages read the same in every client).
const quote = (s) => (s.includes("'") && !s.includes('"')
  ? `"${s.replace(/\\/g, '\\\\')}"` : `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`);

// --- semantic versions -----------------------------------------------------------------

function number(part) {
  if (!DIGITS.test(part) || (part.length > 1 && part[0] === '0')) return null;
  return BigInt(part);
}

function prerelease(text) {
  const out = [];
  for (const ident of text.split('.')) {
    if (!IDENT.test(ident)) return null;
    if (DIGITS.test(ident)) {
      const n = number(ident);
      if (n === null) return null;
      out.push([0, n, '']);
    } else {
      out.push([1, 0n, ident]);
    }
  }
  return out;
}

const RELEASE = [[2, 0n, '']]; // sorts after any pre-release identifier list

/** The precedence key of a semantic version, null if `text` is not one (TARGETING.md). */
function versionKey(text) {
  let t = String(text);
  if (t[0] === 'v' || t[0] === 'V') t = t.slice(1);
  const plus = t.indexOf('+');
  if (plus >= 0) {
    if (!t.slice(plus + 1).split('.').every((p) => IDENT.test(p))) return null;
    t = t.slice(0, plus);
  }
  const dash = t.indexOf('-');
  const core = dash >= 0 ? t.slice(0, dash) : t;
  const parts = core.split('.');
  if (parts.length > 3) return null;
  const nums = parts.map(number);
  if (nums.some((n) => n === null)) return null;
  while (nums.length < 3) nums.push(0n);
  if (dash < 0) return [nums, RELEASE];
  const idents = prerelease(t.slice(dash + 1));
  return idents === null ? null : [nums, idents];
}

const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0); // eslint-disable-line no-nested-ternary

function compareIdents(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
    const c = cmp(a[i][0], b[i][0]) || cmp(a[i][1], b[i][1]) || cmp(a[i][2], b[i][2]);
    if (c) return c;
  }
  return cmp(a.length, b.length);
}

/** -1, 0 or 1: the precedence of two version keys. */
function compareVersions([an, ai], [bn, bi]) {
  for (let i = 0; i < 3; i += 1) {
    const c = cmp(an[i], bn[i]);
    if (c) return c;
  }
  return compareIdents(ai, bi);
}

// --- operators, text form, validation ----------------------------------------------------

/** The operator's enum name ('OPERATOR_EQ') from a name or a number; null if unknown. */
function opName(op) {
  if (typeof op === 'number') return Number.isInteger(op) && op > 0 && op < OPS.length ? OPS[op] : null;
  return OPS.includes(op) && op !== OPS[0] ? op : null;
}

function quoteValue(v) {
  if (BARE.test(v)) return v;
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The canonical text of one condition, as targeting.format. */
function format(cond) {
  const op = opName(cond.op);
  const values = cond.values || [];
  if (SYMBOLS[op]) return `${cond.attribute} ${SYMBOLS[op]} ${quoteValue(values.length ? values[0] : '')}`;
  if (LISTS.has(op)) {
    return `${cond.attribute} ${op === 'OPERATOR_IN' ? 'in' : 'not in'} [${values.map(quoteValue).join(', ')}]`;
  }
  if (NO_VALUE.has(op)) return `${cond.attribute} ${op === 'OPERATOR_EXISTS' ? 'exists' : 'not exists'}`;
  throw new ConditionError('the operator is not set', 'op');
}

function checkAttribute(attr, where) {
  const field = `${where}attribute`;
  if (!attr) throw new ConditionError('the attribute is required', field);
  if (chars(attr) > MAX_ATTRIBUTE_CHARS) {
    throw new ConditionError(`longer than ${MAX_ATTRIBUTE_CHARS} characters`, field);
  }
  if (attr.startsWith(PARAM_PREFIX)) {
    if (!PARAM.test(attr.slice(PARAM_PREFIX.length))) {
      throw new ConditionError(`${quote(attr)}: a parameter is param.<name> with letters, `
        + "digits, '-', '_', '.'", field);
    }
    return;
  }
  const lower = attr.toLowerCase();
  if (attr !== lower && HEADER.test(lower)) {
    throw new ConditionError(`${quote(attr)}: header names are lower case (${quote(lower)})`, field);
  }
  if (!HEADER.test(attr)) {
    throw new ConditionError(`${quote(attr)} is neither a header name (lower case letters, `
      + "digits, '-', '_', '.') nor param.<name>", field);
  }
  if (attr.endsWith('-bin')) {
    throw new ConditionError(`${quote(attr)}: binary (-bin) headers cannot be compared`, field);
  }
}

function checkValues(cond, op, where) {
  const field = `${where}values`;
  const values = cond.values || [];
  if (NO_VALUE.has(op) && values.length) {
    throw new ConditionError(`${quote(format(cond))} takes no values`, field);
  }
  if ((SYMBOLS[op]) && values.length !== 1) {
    throw new ConditionError(`${SYMBOLS[op]} takes exactly one value, not ${values.length}`, field);
  }
  if (LISTS.has(op) && !values.length) throw new ConditionError('in / not in need at least one value', field);
  if (values.length > MAX_VALUES) throw new ConditionError(`more than ${MAX_VALUES} values`, field);
  values.forEach((v, j) => {
    if (typeof v !== 'string') throw new ConditionError('values are strings', `${field}[${j}]`);
    if (chars(v) > MAX_VALUE_CHARS) {
      throw new ConditionError(`longer than ${MAX_VALUE_CHARS} characters`, `${field}[${j}]`);
    }
    if (VERSION_OPS.has(op) && versionKey(v) === null) {
      throw new ConditionError(`${quote(v)} is not a semantic version `
        + '(MAJOR[.MINOR[.PATCH]][-PRERELEASE])', `${field}[${j}]`);
    }
  });
}

/** Throw ConditionError for the first wrong part (as targeting.validate). */
function validate(conds, field = 'targeting') {
  if (conds.length > MAX_CONDITIONS) {
    throw new ConditionError(`more than ${MAX_CONDITIONS} conditions`, field || 'targeting');
  }
  conds.forEach((cond, i) => {
    const where = field ? `${field}[${i}].` : '';
    checkAttribute(typeof cond.attribute === 'string' ? cond.attribute : '', where);
    const op = opName(cond.op);
    if (op === null) {
      const n = OPS.indexOf(cond.op); // the enum's number, as the reference says it
      throw new ConditionError(`unknown operator ${n >= 0 ? n : cond.op}`, `${where}op`);
    }
    checkValues(cond, op, where);
  });
}

// --- the matcher -------------------------------------------------------------------------

const VERSION_TESTS = {
  OPERATOR_VERSION_GT: (c) => c > 0,
  OPERATOR_VERSION_GTE: (c) => c >= 0,
  OPERATOR_VERSION_LT: (c) => c < 0,
  OPERATOR_VERSION_LTE: (c) => c <= 0,
};

function check(cond) {
  const attr = cond.attribute;
  const op = opName(cond.op);
  const values = new Set(cond.values || []);
  switch (op) {
    case 'OPERATOR_EXISTS': return (get) => get(attr) !== null;
    case 'OPERATOR_NOT_EXISTS': return (get) => get(attr) === null;
    case 'OPERATOR_EQ': case 'OPERATOR_IN': return (get) => values.has(get(attr));
    case 'OPERATOR_NEQ': case 'OPERATOR_NOT_IN': return (get) => {
      const v = get(attr);
      return v !== null && !values.has(v);
    };
    default: {
      const bound = versionKey(cond.values[0]);
      const test = VERSION_TESTS[op];
      return (get) => {
        const v = get(attr);
        const key = v === null ? null : versionKey(v);
        return key !== null && test(compareVersions(key, bound));
      };
    }
  }
}

/** Compiled conditions (ANDed). `always`: there are none. `matches(get)`, where
 *  `get(attribute)` gives the request's value as text or null when it has none. */
class Matcher {
  constructor(conds) {
    validate(conds);
    this.always = conds.length === 0;
    this.checks = conds.map(check);
    this.attributes = [...new Set(conds.map((c) => c.attribute))];
    this.texts = conds.map(format);
  }

  matches(get) {
    return this.checks.every((c) => c(get));
  }

  get readsParams() {
    return this.attributes.some((a) => a.startsWith(PARAM_PREFIX));
  }
}

/** The matcher of conditions in their wire form ({attribute, op, values}); throws
 *  ConditionError naming the wrong part. */
const compile = (conds) => new Matcher(conds || []);

module.exports = {
  compile, validate, format, versionKey, compareVersions, opName, Matcher, ConditionError,
  PARAM_PREFIX, MAX_CONDITIONS, MAX_VALUES, MAX_VALUE_CHARS, MAX_ATTRIBUTE_CHARS,
};
