'use strict';
// Latency histogram buckets, reproduced from protos/neural/mlops/v1/METRICS.md: the bounds
// are the normative table in latency_vectors.json (Math.pow(10, k / 40) differs from it in
// the last bit for 39 of the 401 bounds, so they are read, not computed).
const fs = require('node:fs');
const path = require('node:path');

const SPEC_DIR = path.join(process.env.NEURAL_MLOPS_PROTOS
  || path.resolve(__dirname, '..', '..', '..', 'protos'), 'neural', 'mlops', 'v1');
const { scheme: SCHEME, bounds: BOUNDS } = JSON.parse(
  fs.readFileSync(path.join(SPEC_DIR, 'latency_vectors.json'), 'utf8'));

/** Index of the bucket holding ``seconds``: the number of bounds <= seconds (a value
 *  equal to a bound goes to the bucket above it). */
function latencyBucket(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    throw new RangeError(`latency must be a finite number >= 0, got ${seconds}`);
  }
  let lo = 0;
  let hi = BOUNDS.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (BOUNDS[mid] <= seconds) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Counts per bucket in the wire form of routing.proto (latency_buckets): index 0..k,
 *  trailing empty buckets omitted. */
function denseBuckets(latencies) {
  const counts = [];
  for (const s of latencies) {
    const i = latencyBucket(s);
    while (counts.length <= i) counts.push(0);
    counts[i] += 1;
  }
  return counts;
}

module.exports = { SCHEME, BOUNDS, latencyBucket, denseBuckets };
