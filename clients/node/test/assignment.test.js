'use strict';
// The JavaScript assignment must reproduce every vector of the contract bit for bit.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const {
  hashUint64, bucket, bucketOfUint64, pickIndex, layerTest, assignInLayer,
} = require('../src/assignment');

const vectorsPath = path.resolve(__dirname, '..', '..', '..', 'protos', 'neural', 'mlops', 'v1',
  'assignment_vectors.json');
const { vectors } = JSON.parse(fs.readFileSync(vectorsPath, 'utf8'));

test('reproduces every assignment vector', () => {
  assert.ok(vectors.length > 1000);
  for (const v of vectors) {
    const where = `salt=${JSON.stringify(v.salt)} unit=${JSON.stringify(v.unit_id)}`;
    assert.equal(hashUint64(v.salt, v.unit_id).toString(), v.uint64, where);
    assert.equal(bucket(v.salt, v.unit_id), v.bucket, where);
    assert.equal(pickIndex(v.bucket, v.weights), v.variant, where);
  }
});

test('a bucket on a threshold does not take the first variant', () => {
  assert.equal(pickIndex(0.25, [0.25, 0.75]), 1);
  assert.equal(pickIndex(0.1, [0, 0.5, 0.5]), 1);
});

test('rounds a uint64 to the nearest double at the float ties (rounding vectors)', () => {
  const { rounding_vectors: rounding } = JSON.parse(fs.readFileSync(vectorsPath, 'utf8'));
  assert.ok(rounding.some((v) => v.uint64 === (2n ** 63n + 1025n).toString()));
  for (const v of rounding) {
    const b = bucketOfUint64(BigInt(v.uint64));
    assert.equal(b, v.bucket, v.note);
    assert.equal(pickIndex(b, v.weights), v.variant, v.note);
  }
});

test('puts a unit in at most one test of a layer, by the layer vectors', () => {
  const { layer_vectors: layers } = JSON.parse(fs.readFileSync(vectorsPath, 'utf8'));
  assert.ok(layers.length > 200);
  assert.ok(layers.some((v) => v.test < 0) && layers.some((v) => v.test >= 0));
  for (const v of layers) {
    assert.equal(hashUint64(v.layer_id, v.unit_id).toString(), v.uint64);
    assert.equal(bucket(v.layer_id, v.unit_id), v.bucket);
    assert.equal(layerTest(v.layer_id, v.unit_id, v.ranges), v.test, v.note);
    const tests = v.ranges.map((range, i) => ({ range, testId: v.test_ids[i], weights: v.weights }));
    assert.deepEqual(assignInLayer(v.layer_id, v.unit_id, tests), { test: v.test, arm: v.arm });
  }
});
