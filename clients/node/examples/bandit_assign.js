#!/usr/bin/env node
'use strict';
// Assign units locally by the live routing table, as a sidecar would, while a
// multi-armed bandit reweights: one JSON request per line on stdin, one JSON answer per
// line on stdout (the Python test harness drives it against a real control plane).
//
//   node examples/bandit_assign.js grpc://127.0.0.1:50051 [stickyUnits]
//   {"op": "create", "request": {CreateTestRequest fields}}  -> the ABTest
//   {"op": "start", "test_id": "..."}  StartTest, then wait for its route in the table
//       -> {"version": 2, "weights": {...}}
//   {"op": "assign", "route_id": "<test id>", "units": ["u1", "u2"]}
//       -> {"version": 3, "arms": ["treatment", "control"], "weights": {...}}
//   {"op": "record", "test_id": "...", "records": [{"variant", "unit_id", "success"}]}
//   {"op": "reweight", "test_id": "..."}   ReweightBandit, then wait for the new table
//       -> {"version": 4, "weights": {...}} (the weights the control plane answered)
//   {"op": "get_variant", "test_id": "...", "units": [...]}  -> {"variants": [...]}
//   {"op": "wait", "route_id": "...", "weights": {...}}  wait until the table has the route
//       (with these weights, when given) -> {"version", "weights", "reconnects"}
//   {"op": "stats"}  -> {"version", "remembered", "evictions", "hits", "reconnects"}
//   {"op": "resolve", "model": "shop", "requests": [{"unit": "u1", "forced": null,
//       "headers": [["x-country", "DE"]], "params": {...} | "body": "<REST body>"}]}
//       -> {"version", "results": [{"label", "tests": [[test id, arm]], "variant"}]}
//       (targeting applied to each request's attributes, as the sidecar does)
//
// An error answers {"error", "name", "reason", "field"} and the next line is read.
const readline = require('node:readline');
const { NeuralMLOpsClient } = require('../src');

const target = process.argv[2] || process.env.NEURAL_MLOPS_TARGET || 'grpc://127.0.0.1:50051';
const stickyUnits = process.argv[3] === undefined ? undefined : Number(process.argv[3]);

const sameWeights = (a, b) => Object.keys(a).length === Object.keys(b).length
  && Object.keys(a).every((k) => a[k] === b[k]);

async function reweight(client, follower, testId) {
  const test = await client.reweightBandit(testId);
  const weights = Object.fromEntries(test.variants.map((v) => [v.name, v.weight]));
  // The reweighting reaches the table in a new version; wait until the router has it.
  let version = follower.router.version;
  while (!sameWeights(follower.router.weights(testId), weights)) {
    version = await follower.waitForVersion(version + 1); // eslint-disable-line no-await-in-loop
  }
  return { version: follower.router.version, weights };
}

async function routed(follower, routeId, weights) {
  const has = () => follower.router.routes.has(routeId)
    && (!weights || sameWeights(follower.router.weights(routeId), weights));
  while (!has()) {
    await follower.waitForVersion(follower.router.version + 1); // eslint-disable-line no-await-in-loop
  }
  return {
    version: follower.router.version, weights: follower.router.weights(routeId),
    reconnects: follower.reconnects,
  };
}

async function started(client, follower, testId) {
  await client.startTest(testId);
  return routed(follower, testId);
}

async function handle(client, follower, req) {
  const { router } = follower;
  switch (req.op) {
    case 'create':
      return client.createTest(req.request);
    case 'start':
      return started(client, follower, req.test_id);
    case 'assign':
      return {
        version: router.version,
        arms: req.units.map((u) => router.assign(req.route_id, u, { forced: req.forced })),
        weights: router.weights(req.route_id),
      };
    case 'record':
      return client.recordRequests(req.test_id, req.records);
    case 'reweight':
      return reweight(client, follower, req.test_id);
    case 'get_variant':
      return {
        variants: await Promise.all(req.units.map(
          async (u) => (await client.getVariant(req.test_id, u)).variant,
        )),
      };
    case 'wait':
      return routed(follower, req.route_id, req.weights);
    case 'resolve':
      return {
        version: router.version,
        results: req.requests.map((q) => router.resolve(req.model, q.unit, {
          forced: q.forced === undefined ? null : q.forced, headers: q.headers || [],
          params: q.params, body: q.body,
        })),
      };
    case 'stats':
      return {
        version: router.version, remembered: router.sticky.length,
        evictions: router.sticky.evictions, hits: router.sticky.hits,
        reconnects: follower.reconnects,
      };
    default:
      throw new Error(`unknown op ${JSON.stringify(req.op)}`);
  }
}

async function main() {
  const client = new NeuralMLOpsClient(target);
  const follower = client.followRoutes({ stickyUnits });
  try {
    await follower.ready();
    process.stdout.write(`${JSON.stringify({ ready: true, version: follower.router.version })}\n`);
    for await (const line of readline.createInterface({ input: process.stdin })) {
      if (!line.trim()) continue; // eslint-disable-line no-continue
      let answer;
      try {
        answer = await handle(client, follower, JSON.parse(line));
      } catch (err) {
        answer = {
          error: err.message, name: err.name, reason: err.reason || null, field: err.field || null,
        };
      }
      process.stdout.write(`${JSON.stringify(answer)}\n`);
    }
  } finally {
    follower.close();
    client.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.name}: ${err.message}\n`);
  process.exit(1);
});
