'use strict';
// The audit chain, checkpoint and seal rules of AUDIT.md reproduce every audit vector.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parse: parseLossless, stringify: stringifyLossless } = require('lossless-json');
const audit = require('../src/audit');

const vectorsPath = path.resolve(__dirname, '..', '..', '..', 'protos', 'neural', 'mlops', 'v1',
  'audit_vectors.json');
const text = fs.readFileSync(vectorsPath, 'utf8');
const doc = JSON.parse(text);
const lossless = parseLossless(text); // version 1 needs each number's source text

test('every event hash of the vectors, versions 1 and 2', () => {
  assert.deepEqual(doc.events.map((e) => e.hash_version), [1, 1, 2, 2, 2]);
  let prev = audit.GENESIS;
  lossless.events.forEach((event, i) => {
    assert.equal(event.prev_hash, prev);
    assert.equal(audit.hashedText(event), doc.events[i].hashed_text, `event ${i + 1}`);
    assert.equal(audit.eventHash(event), doc.events[i].hash, `event ${i + 1}`);
    prev = event.hash;
  });
});

test('the checkpoint and seal messages and signatures', () => {
  assert.equal(audit.keyId(doc.public_key), doc.key_id);
  const cp = audit.checkpointMessage(doc.checkpoint);
  assert.equal(cp.toString('utf8'), doc.checkpoint.message);
  assert.ok(audit.verifySignature(doc.public_key, cp, doc.checkpoint.signature));
  const seal = audit.sealMessage(doc.seal);
  assert.equal(seal.toString('utf8'), doc.seal.message);
  assert.ok(audit.verifySignature(doc.public_key, seal, doc.seal.signature));
  assert.ok(!audit.verifySignature(doc.public_key, Buffer.concat([seal, Buffer.from(' ')]),
    doc.seal.signature));
});

test('Python float spelling for version 1', () => {
  const cases = [[1, '1.0'], [1e-7, '1e-07'], [0.0001, '0.0001'], [1e-5, '1e-05'],
    [1e15, '1000000000000000.0'], [1e16, '1e+16'], [-0, '-0.0'], [1.5, '1.5'],
    [123456789.125, '123456789.125'], [1.2345678901234568e+17, '1.2345678901234568e+17'],
    [5e-324, '5e-324'], [-2.5e-10, '-2.5e-10'], [0.1, '0.1']];
  for (const [x, want] of cases) assert.equal(audit.pyFloatRepr(x), want);
});

test('the sealed export of the vectors verifies, and edits do not', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-vectors-'));
  const file = path.join(dir, 'vectors.jsonl');
  fs.writeFileSync(file, doc.export_jsonl);
  const ok = audit.verifyExport(file, { publicKeyPem: doc.public_key });
  assert.ok(ok.valid, ok.reason);
  assert.equal(ok.eventsChecked, 5);
  // 1.0 -> 1 in a version 1 event changes the hashed text.
  fs.writeFileSync(file, doc.export_jsonl.replace('"accuracy":1.0', '"accuracy":1'));
  const edited = audit.verifyExport(file, { publicKeyPem: doc.public_key });
  assert.ok(!edited.valid);
  assert.equal(edited.firstBadSeq, 1);
  const other = require('node:crypto').generateKeyPairSync('ed25519').publicKey
    .export({ type: 'spki', format: 'pem' });
  fs.writeFileSync(file, doc.export_jsonl);
  assert.ok(!audit.verifyExport(file, { publicKeyPem: other }).valid);
});

/** A vector event as QueryEvents sends it (proto-loader's form of audit.proto AuditEvent). */
function asQueryResult(event) {
  const tsUs = BigInt(event.ts_us.value);
  return {
    event_id: event.event_id,
    seq: String(event.seq.value),
    time: { seconds: String(tsUs / 1000000n), nanos: Number(tsUs % 1000000n) * 1000 },
    event_type: `EVENT_TYPE_${event.event_type.toUpperCase()}`,
    severity: `SEVERITY_${event.severity.toUpperCase()}`,
    actor: event.actor,
    resource_type: event.resource_type,
    resource_id: event.resource_id,
    action: event.action,
    details_json: stringifyLossless(event.details),
    request_id: event.request_id,
    peer: event.peer,
    prev_hash: event.prev_hash,
    hash: event.hash,
    hash_version: event.hash_version ? Number(event.hash_version.value) : 0,
  };
}

test('QueryEvents results verify one by one, in any order, and edits do not', () => {
  const results = lossless.events.map(asQueryResult).reverse(); // pages are newest first
  const ok = audit.verifyEvents(results);
  assert.ok(ok.valid, ok.reason);
  assert.equal(ok.eventsChecked, 5);
  // A filtered query returns events that are not neighbours: each still verifies.
  assert.ok(audit.verifyEvents([results[0], results[3]]).valid);
  const edited = results.map((r) => ({ ...r }));
  edited[4].details_json = edited[4].details_json.replace('1.0', '1'); // event 1, version 1
  assert.equal(audit.verifyEvents(edited).firstBadSeq, 1);
  const relinked = results.map((r) => ({ ...r }));
  relinked[1].prev_hash = audit.GENESIS; // event 4 no longer follows event 3
  assert.equal(audit.verifyEvents(relinked).firstBadSeq, 4);
  const relabelled = results.map((r) => ({ ...r }));
  relabelled[0].hash_version = 1; // a version 2 event read as version 1
  assert.ok(!audit.verifyEvents(relabelled).valid);
});
