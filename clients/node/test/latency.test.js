'use strict';
// Latency buckets computed from the spec (METRICS.md) reproduce every latency vector.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { SCHEME, BOUNDS, latencyBucket, denseBuckets } = require('../src/latency');

const vectors = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'protos',
  'neural', 'mlops', 'v1', 'latency_vectors.json'), 'utf8'));

test('every latency vector lands in its bucket', () => {
  assert.equal(SCHEME, 'log10x40:1e-6..1e4');
  assert.equal(BOUNDS.length, 401);
  assert.equal(vectors.buckets, 402);
  assert.ok(vectors.cases.length > 1200);
  for (const c of vectors.cases) assert.equal(latencyBucket(c.seconds), c.bucket, `${c.seconds}`);
});

test('a latency equal to a bound goes to the bucket above it', () => {
  assert.equal(latencyBucket(BOUNDS[0]), 1);
  assert.equal(latencyBucket(0), 0);
  assert.equal(latencyBucket(BOUNDS[400]), 401);
  assert.deepEqual(denseBuckets([0, BOUNDS[1], BOUNDS[1]]), [1, 0, 2]);
  assert.throws(() => latencyBucket(-1e-9), RangeError);
  assert.throws(() => latencyBucket(Number.NaN), RangeError);
});
