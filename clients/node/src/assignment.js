'use strict';
// Variant assignment, reproduced from protos/neural/mlops/v1/ASSIGNMENT.md (normative):
// bucket = uint64_be(sha256(utf8(salt + ":" + unitId))[:8]) / 2^64, then the first
// variant (declared order) with positive weight whose running weight sum exceeds it.
const crypto = require('node:crypto');

const TWO_POW_MINUS_64 = 2 ** -64;

/** The 64-bit integer behind the bucket, as a BigInt (exact). */
function hashUint64(salt, unitId) {
  const digest = crypto.createHash('sha256').update(`${salt}:${unitId}`, 'utf8').digest();
  return digest.readBigUInt64BE(0);
}

/** bucket in [0, 1] of a uint64 (BigInt): Number(BigInt) rounds to nearest, ties to
 *  even, as the spec requires (the rounding vectors check it at u = 2^63 + 1025). */
function bucketOfUint64(u) {
  return Number(u) * TWO_POW_MINUS_64;
}

function bucket(salt, unitId) {
  return bucketOfUint64(hashUint64(salt, unitId));
}

/** 0-based index of the variant a bucket falls in, for weights in declared order. */
function pickIndex(b, weights) {
  let c = 0;
  let lastPositive = -1;
  for (let i = 0; i < weights.length; i += 1) {
    c += weights[i];
    if (weights[i] > 0) {
      lastPositive = i;
      if (b < c) return i;
    }
  }
  if (lastPositive < 0) throw new RangeError('no variant has a positive weight');
  return lastPositive;
}

function assign(salt, unitId, weights) {
  return pickIndex(bucket(salt, unitId), weights);
}

/** Layers (ASSIGNMENT.md "Layers"): index of the [start, end) range holding the bucket
 *  among one layer's tests' disjoint ranges, or -1 (ends are exclusive). */
function pickRange(b, ranges) {
  for (let i = 0; i < ranges.length; i += 1) {
    const [start, end] = ranges[i];
    if (start <= b && b < end) return i;
  }
  return -1;
}

/** Which of a layer's tests (given by their ranges) the unit is in, or -1; the layer id
 *  is the salt. The arm inside that test is assign(testId, unitId, weights). */
function layerTest(layerId, unitId, ranges) {
  return pickRange(bucket(layerId, unitId), ranges);
}

/** The unit's test and arm in one layer: {test, arm} as indexes (-1, -1: in none). */
function assignInLayer(layerId, unitId, tests) {
  const t = layerTest(layerId, unitId, tests.map((x) => x.range));
  if (t < 0) return { test: -1, arm: -1 };
  return { test: t, arm: assign(tests[t].testId, unitId, tests[t].weights) };
}

module.exports = {
  hashUint64, bucket, bucketOfUint64, pickIndex, assign, pickRange, layerTest, assignInLayer,
};
