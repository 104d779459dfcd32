'use strict';
// Offline verification of an audit export, reproduced from
// protos/neural/mlops/v1/AUDIT.md (normative): the hash chain (hash versions 1 and 2) and
// the export's Ed25519 seal, with node:crypto. Version 2 hashes RFC 8785 (JCS) text
// (`canonicalize`); version 1 hashes Python's json.dumps text, whose float spelling
// (1.0, 1e-07) needs each number's source text, hence `lossless-json`.
const crypto = require('node:crypto');
const fs = require('node:fs');
const canonicalize = require('canonicalize');
const { parse: parseLossless, isLosslessNumber } = require('lossless-json');
const { parse: parseCsv } = require('csv-parse/sync');

const GENESIS = '0'.repeat(64);
const HASHED_FIELDS = ['seq', 'event_id', 'ts_us', 'event_type', 'severity', 'actor',
  'resource_type', 'resource_id', 'action', 'details', 'request_id', 'peer', 'prev_hash'];
const CHECKPOINT_CONTEXT = 'neural-mlops-audit-checkpoint-v1\n';
const SEAL_CONTEXT = 'neural-mlops-audit-export-v1\n';
const LEGACY_CSV_SEAL_PREFIX = '# neural-mlops-audit-export seal=';

/** A parsed value with every number as a JS number (what JCS serializes). */
function toPlain(v) {
  if (isLosslessNumber(v)) return Number(v.value);
  if (Array.isArray(v)) return v.map(toPlain);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toPlain(x)]));
  }
  return v;
}

/** Python's repr() of a binary64: shortest round-trip digits, fixed notation when the
 *  decimal point falls in (-4, 16], otherwise d.ddde±XX (at least two exponent digits). */
function pyFloatRepr(x) {
  if (!Number.isFinite(x)) throw new RangeError(`${x} is not valid JSON`);
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, expText] = Math.abs(x).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const exp = Number(expText);
  const point = exp + 1; // digits d1d2... are 0.d1d2... x 10^point
  let out;
  if (point > -4 && point <= 16) {
    if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
    else if (point >= digits.length) out = `${digits}${'0'.repeat(point - digits.length)}.0`;
    else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  } else {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    out = `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return x < 0 ? `-${out}` : out;
}

function byCodePoint(a, b) {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** Version 1 text: json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False).
 *  An integer literal is its integer value; any other number is parsed and written as
 *  Python's repr. Strings escape as JSON.stringify does (the same escapes). */
function canonicalV1(v) {
  if (v === null) return 'null';
  if (isLosslessNumber(v)) {
    return /^-?\d+$/.test(v.value) ? BigInt(v.value).toString() : pyFloatRepr(Number(v.value));
  }
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : pyFloatRepr(v);
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalV1).join(',')}]`;
  const keys = Object.keys(v).sort(byCodePoint);
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalV1(v[k])}`).join(',')}}`;
}

function hashVersion(event) {
  const raw = event.hash_version;
  const version = raw === undefined || raw === null || raw === '' ? 1 : Number(String(raw));
  if (version !== 1 && version !== 2) throw new RangeError(`unknown hash_version ${raw}`);
  return version;
}

/** The exact text whose SHA-256 is the event's hash. ``event`` comes from lossless-json
 *  (numbers keep their source text); ``details`` is an object. */
function hashedText(event) {
  const version = hashVersion(event);
  const body = {};
  for (const k of HASHED_FIELDS) {
    if (!(k in event)) throw new RangeError(`event has no ${k}`);
    body[k] = event[k];
  }
  if (version === 2) return event.prev_hash + canonicalize({ ...toPlain(body), hash_version: 2 });
  return event.prev_hash + canonicalV1(body);
}

function eventHash(event) {
  return crypto.createHash('sha256').update(hashedText(event), 'utf8').digest('hex');
}

/** The bytes a checkpoint's signature covers. */
function checkpointMessage(cp) {
  const { seq, hash, created_us: createdUs, kind, key_id: keyId } = toPlain(cp);
  return Buffer.from(CHECKPOINT_CONTEXT + canonicalize(
    { seq, hash, created_us: createdUs, kind, key_id: keyId }), 'utf8');
}

/** The bytes an export seal's signature covers: every field but signature, public_key
 *  and the jsonl line's "record". */
function sealMessage(seal) {
  const body = {};
  for (const [k, v] of Object.entries(toPlain(seal))) {
    if (!['signature', 'public_key', 'record', 'message'].includes(k)) body[k] = v;
  }
  return Buffer.from(SEAL_CONTEXT + canonicalize(body), 'utf8');
}

/** key_id: the first 16 hex digits of SHA-256 over the raw 32-byte Ed25519 public key. */
function keyId(publicKeyPem) {
  const jwk = crypto.createPublicKey(publicKeyPem).export({ format: 'jwk' });
  const raw = Buffer.from(jwk.x, 'base64url');
  return crypto.createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

function verifySignature(publicKeyPem, message, signatureB64) {
  try {
    return crypto.verify(null, message, crypto.createPublicKey(publicKeyPem),
      Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}

function readExport(path) {
  const text = fs.readFileSync(path, 'utf8');
  const head = text.trimStart();
  if (head.startsWith('{"format"')) {
    const doc = parseLossless(text);
    return { seal: doc.seal, events: doc.events || [] };
  }
  if (head.startsWith('{')) {
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const seal = parseLossless(lines[0]);
    if (!seal || seal.record !== 'seal') return { seal: null, events: [] };
    return { seal, events: lines.slice(1).map((l) => parseLossless(l)) };
  }
  let body = text;
  let seal = null;
  if (text.startsWith(LEGACY_CSV_SEAL_PREFIX)) {
    const end = text.indexOf('\n');
    seal = parseLossless(text.slice(LEGACY_CSV_SEAL_PREFIX.length, end));
    body = text.slice(end + 1);
  } else if (fs.existsSync(`${path}.seal`)) {
    seal = parseLossless(fs.readFileSync(`${path}.seal`, 'utf8'));
  }
  const rows = parseCsv(body, { columns: true });
  // CSV cells are text: seq and ts_us are integers in the hashed object (below 2^53).
  const events = rows.map((r) => ({
    ...r, seq: Number(r.seq), ts_us: Number(r.ts_us), details: parseLossless(r.details),
  }));
  return { seal, events };
}

function asInt(v) {
  const n = Number(isLosslessNumber(v) ? v.value : v);
  return Number.isSafeInteger(n) ? n : NaN;
}

/** Check the events against each other and the run the seal names. */
function checkChain(seal, events) {
  const out = { valid: true, eventsChecked: 0, firstBadSeq: 0, reason: '', lastHash: '' };
  const fail = (seq, reason) => Object.assign(out, { valid: false, firstBadSeq: seq, reason });
  const firstSeq = asInt(seal.first_seq);
  let expected = firstSeq;
  let prev = String(seal.first_prev_hash);
  let version = 1;
  for (const event of events) {
    const seq = asInt(event.seq);
    if (seq !== expected) return fail(seq || expected, `seq ${event.seq} where ${expected} was expected`);
    if (event.prev_hash !== prev) return fail(seq, `prev_hash does not match event ${seq - 1}`);
    let v;
    try {
      v = hashVersion(event);
      if (v < version) return fail(seq, `hash version ${v} after version ${version}`);
      if (eventHash(event) !== event.hash) return fail(seq, 'content does not match its hash');
    } catch (err) {
      return fail(seq, `malformed event (${err.message})`);
    }
    version = v;
    prev = event.hash;
    expected = seq + 1;
    out.eventsChecked += 1;
  }
  out.lastHash = prev;
  const count = asInt(seal.count);
  if (count && (out.eventsChecked !== count || expected - 1 !== asInt(seal.last_seq))) {
    return fail(expected, `the file ends at seq ${expected - 1} but the seal covers `
      + `${seal.first_seq}..${seal.last_seq}`);
  }
  if (count && prev !== seal.last_hash) return fail(asInt(seal.last_seq), 'last hash differs from the seal');
  if (!count && out.eventsChecked) return fail(0, 'the seal covers no events but the file holds some');
  return out;
}

/** Verify an export file (jsonl, json, or csv with its .seal beside it) offline.
 *  ``publicKeyPem`` pins the store's key; without it the key embedded in the seal is
 *  used, which proves integrity but not origin. */
function verifyExport(path, { publicKeyPem } = {}) {
  let parsed;
  try {
    parsed = readExport(path);
  } catch (err) {
    return { valid: false, reason: `not a readable export (${err.message})` };
  }
  const { seal, events } = parsed;
  if (!seal || typeof seal !== 'object') return { valid: false, reason: 'the file has no seal' };
  const result = checkChain(seal, events);
  const pem = publicKeyPem || String(seal.public_key || '');
  let signatureValid = false;
  try {
    result.keyId = keyId(pem);
    signatureValid = result.keyId === seal.key_id
      && verifySignature(pem, sealMessage(seal), String(seal.signature || ''));
  } catch {
    signatureValid = false;
  }
  result.signatureValid = signatureValid;
  if (result.valid && !signatureValid) {
    Object.assign(result, { valid: false, reason: 'the seal signature does not verify' });
  }
  if (result.valid && seal.store_chain_verified === false) {
    Object.assign(result, { valid: false, reason: 'the store chain did not verify at export' });
  }
  return result;
}

/** The event a QueryEvents result holds (an AuditEvent as @grpc/proto-loader gives it:
 *  snake_case, int64 as strings, enums as names), as the object AUDIT.md hashes. */
function fromQueryEvent(msg) {
  const seconds = BigInt(String(msg.time.seconds));
  const tsUs = seconds * 1000000n + BigInt(Math.trunc(Number(msg.time.nanos) / 1000));
  const lower = (name, prefix) => {
    if (!String(name).startsWith(prefix) || name.endsWith('_UNSPECIFIED')) {
      throw new RangeError(`unknown ${prefix}value ${name}`);
    }
    return name.slice(prefix.length).toLowerCase();
  };
  return {
    seq: Number(msg.seq),
    event_id: msg.event_id,
    ts_us: Number(tsUs),
    event_type: lower(msg.event_type, 'EVENT_TYPE_'),
    severity: lower(msg.severity, 'SEVERITY_'),
    actor: msg.actor,
    resource_type: msg.resource_type,
    resource_id: msg.resource_id,
    action: msg.action,
    // The details as hashed; version 1 needs each number's source text.
    details: parseLossless(msg.details_json || '{}'),
    request_id: msg.request_id,
    peer: msg.peer,
    prev_hash: msg.prev_hash,
    hash: msg.hash,
    hash_version: Number(msg.hash_version) || 1,
  };
}

/** Verify QueryEvents results (any filters, any pages): every event's hash is recomputed
 *  from the message alone, and where two results are neighbours in the chain (seq and
 *  seq + 1) the later one's prev_hash must be the earlier one's hash and its hash version
 *  not lower. Returns {valid, eventsChecked, firstBadSeq, reason}. */
function verifyEvents(messages) {
  const out = { valid: true, eventsChecked: 0, firstBadSeq: 0, reason: '' };
  const fail = (seq, reason) => Object.assign(out, { valid: false, firstBadSeq: seq, reason });
  let events;
  try {
    events = messages.map(fromQueryEvent).sort((a, b) => a.seq - b.seq);
  } catch (err) {
    return fail(0, `malformed event (${err.message})`);
  }
  let before = null;
  for (const event of events) {
    if (before && before.seq === event.seq) return fail(event.seq, `seq ${event.seq} twice`);
    if (before && before.seq + 1 === event.seq) {
      if (event.prev_hash !== before.hash) {
        return fail(event.seq, `prev_hash does not match event ${before.seq}`);
      }
      if (event.hash_version < before.hash_version) {
        return fail(event.seq, `hash version ${event.hash_version} after `
          + `version ${before.hash_version}`);
      }
    }
    try {
      if (eventHash(event) !== event.hash) return fail(event.seq, 'content does not match its hash');
    } catch (err) {
      return fail(event.seq, `malformed event (${err.message})`);
    }
    before = event;
    out.eventsChecked += 1;
  }
  return out;
}

module.exports = {
  GENESIS,
  canonicalV1,
  checkpointMessage,
  eventHash,
  fromQueryEvent,
  hashedText,
  keyId,
  pyFloatRepr,
  sealMessage,
  verifyEvents,
  verifyExport,
  verifySignature,
};
