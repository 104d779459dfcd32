'use strict';
// Bandit routes (ASSIGNMENT_STRATEGY_BANDIT): the Node client gives every unit the arm the
// sidecar gives it (bandit_vectors.json, generated from the sidecar's router and replayed
// by tests/test_node_client_bandit.py too), keeps a unit's arm while the weights move,
// and refuses what it cannot assign with an error naming the problem.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { LocalRouter, UnknownStrategyError, StickyArms, assignment } = require('../src');
const { loadPackage } = require('../src');

const vectorsPath = path.resolve(__dirname, '..', '..', '..', 'protos', 'neural', 'mlops', 'v1',
  'bandit_vectors.json');
const { cases } = JSON.parse(fs.readFileSync(vectorsPath, 'utf8'));

const route = (weights, extra = {}) => ({
  route_id: 't1', model_name: 'shop', kind: 'ROUTE_KIND_EXPERIMENT',
  strategy: 'ASSIGNMENT_STRATEGY_BANDIT',
  variants: Object.entries(weights).map(([name, weight]) => ({ name, weight })),
  ...extra,
});
const units = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

test('reproduces every bandit vector of the sidecar (arms and sticky counters)', () => {
  assert.equal(cases.length, 7);
  let checked = 0;
  for (const c of cases) {
    const router = new LocalRouter({ stickyUnits: c.sticky_units });
    c.steps.forEach((step, i) => {
      const where = `${c.name}, step ${i}`;
      if (step.table) {
        router.apply(step.table);
        assert.equal(router.rejected.size, 0, where);
      } else if (step.assign) {
        const { route_id: routeId, forced, units: us, arms } = step.assign;
        const got = us.map((u) => router.assign(routeId, u, { forced }));
        assert.deepEqual(got, arms, where);
        checked += us.length;
      } else {
        const s = router.sticky;
        assert.deepEqual({ remembered: s.length, evictions: s.evictions, hits: s.hits },
          step.counters, where);
      }
    });
  }
  assert.ok(checked > 1500, `${checked} assignments checked`);
});

test('a unit keeps its arm after a reweighting; a new unit follows the new weights', () => {
  const router = new LocalRouter();
  router.apply({ version: '1', routes: [route({ treatment: 0.5, control: 0.5 })] });
  const seen = units('user', 400);
  const before = seen.map((u) => router.assign('t1', u));
  router.apply({ version: '2', routes: [route({ treatment: 0.05, control: 0.95 })] });
  assert.deepEqual(seen.map((u) => router.assign('t1', u)), before);
  // Without the memory, the hash by today's weights would have moved ~45% of them.
  const rehashed = seen.map((u) => ['treatment', 'control'][assignment.assign('t1', u, [0.05, 0.95])]);
  assert.ok(rehashed.filter((a, i) => a !== before[i]).length > 120);
  const fresh = units('new', 400);
  assert.deepEqual(fresh.map((u) => router.assign('t1', u)),
    fresh.map((u) => ['treatment', 'control'][assignment.assign('t1', u, [0.05, 0.95])]));
  assert.deepEqual(router.weights('t1'), { treatment: 0.05, control: 0.95 });
  assert.equal(router.sticky.length, 800);
});

test('the memory is a bounded LRU per (route, unit) with counted evictions', () => {
  const sticky = new StickyArms(3);
  for (let i = 0; i < 5; i += 1) sticky.put('t', `u${i}`, 'a');
  assert.equal(sticky.length, 3);
  assert.equal(sticky.evictions, 2);
  assert.equal(sticky.get('t', 'u0'), null);
  assert.equal(sticky.get('t', 'u2'), 'a');
  sticky.put('t', 'u5', 'b'); // u2 was just used: u3 is the least recent
  assert.equal(sticky.get('t', 'u3'), null);
  assert.equal(sticky.get('t', 'u2'), 'a');
  assert.equal(sticky.get('other', 'u2'), null);
  assert.equal(sticky.get('t:u', '2'), null); // ("t:u", "2") is not ("t", "u2")
  const off = new StickyArms(0);
  off.put('t', 'u', 'a');
  assert.equal(off.length, 0);
  assert.throws(() => new StickyArms(-1), /sticky table size must be an integer >= 0, got -1/);
  const router = new LocalRouter({ stickyUnits: 100 });
  router.apply({ version: 1, routes: [route({ treatment: 0.5, control: 0.5 })] });
  units('u', 400).forEach((u) => router.assign('t1', u));
  assert.equal(router.sticky.length, 100);
  assert.equal(router.sticky.evictions, 300);
});

test('a request without a routing key is drawn by the weights and not remembered', () => {
  const router = new LocalRouter();
  router.apply({ version: 1, routes: [route({ treatment: 1, control: 0 })] });
  for (let i = 0; i < 20; i += 1) assert.equal(router.assign('t1', null), 'treatment');
  assert.equal(router.sticky.length, 0);
});

test('an unknown strategy is refused with an error naming the route and the strategy', () => {
  const router = new LocalRouter();
  router.apply({
    version: 7,
    routes: [route({ a: 1 }, { route_id: 'future', strategy: 9 }),
      route({ a: 1 }, { route_id: 'typo', strategy: 'ASSIGNMENT_STRATEGY_BANDITS' }),
      route({ a: 1 }, { route_id: 'ok' })],
  });
  assert.equal(router.assign('ok', 'u1'), 'a');
  assert.throws(() => router.assign('future', 'u1'), (err) => err instanceof UnknownStrategyError
    && err.routeId === 'future' && err.strategy === 9
    && /route "future" \(model "shop"\) has assignment strategy 9, which this client does not implement; known: ASSIGNMENT_STRATEGY_HASH/.test(err.message));
  assert.throws(() => router.assign('typo', 'u1'),
    /has assignment strategy "ASSIGNMENT_STRATEGY_BANDITS", which this client does not implement/);
});

test('a route the sidecar would reject is refused with the reason; unknown routes are named', () => {
  const router = new LocalRouter();
  router.apply({
    version: 3,
    routes: [route({ a: 0.6, b: 0.6 }, { route_id: 'sum' }),
      route({ a: 1 }, { route_id: 'qa', forced_variants: [{ unit_id: 'u', variant: 'zz' }] }),
      route({ a: 1 }, { route_id: 'range', range_start: 0.5, range_end: 0.2 }),
      route({}, { route_id: 'empty' })],
  });
  assert.throws(() => router.assign('sum', 'u'), /route "sum" was rejected: weights sum to 1.2, not 1/);
  assert.throws(() => router.assign('qa', 'u'),
    /route "qa" was rejected: forced variant "zz" for "u" is not a variant/);
  assert.throws(() => router.assign('range', 'u'), /range \[0.5, 0.2\) is not within \[0, 1\]/);
  assert.throws(() => router.assign('empty', 'u'), /a route needs at least one variant/);
  assert.throws(() => router.assign('stopped-test', 'u'),
    /no route "stopped-test" in routing table version 3/);
});

test('RANDOM and ROUND_ROBIN routes are assigned as the sidecar does', () => {
  const router = new LocalRouter();
  router.apply({
    version: 1,
    routes: [
      route({ a: 0.75, b: 0.25 }, { route_id: 'rr', strategy: 'ASSIGNMENT_STRATEGY_ROUND_ROBIN' }),
      route({ a: 0, b: 1 }, { route_id: 'rnd', strategy: 'ASSIGNMENT_STRATEGY_RANDOM' }),
    ],
  });
  const rr = Array.from({ length: 8 }, () => router.assign('rr', 'same-unit'));
  // Smooth WRR (nginx); the sequence Python's Assigner('rr', ..., 'round_robin') gives.
  assert.deepEqual(rr, ['a', 'a', 'b', 'a', 'a', 'a', 'b', 'a']);
  assert.equal(router.assign('rnd', 'u'), 'b');
  assert.equal(router.sticky.length, 0);
});

test('the routing contract loads: a table message decodes to what LocalRouter applies', () => {
  const pkg = loadPackage();
  const type = pkg.RoutingTable.type;
  assert.ok(type.field.some((f) => f.name === 'routes'));
  const enumType = pkg.AssignmentStrategy.type;
  assert.ok(enumType.value.some((v) => v.name === 'ASSIGNMENT_STRATEGY_BANDIT' && v.number === 4));
});

test('createTest names the strategy the Python API way or by the enum; a typo is refused', async () => {
  const { NeuralMLOpsClient } = require('../src');
  const client = new NeuralMLOpsClient('127.0.0.1:9'); // never called: refused before sending
  try {
    const { splitStrategy } = require('../src').routes;
    const names = client.splitStrategies;
    assert.equal(splitStrategy('multi_armed_bandit', names), 'TRAFFIC_SPLIT_STRATEGY_MULTI_ARMED_BANDIT');
    assert.equal(splitStrategy(4, names), 'TRAFFIC_SPLIT_STRATEGY_MULTI_ARMED_BANDIT');
    assert.equal(splitStrategy('TRAFFIC_SPLIT_STRATEGY_HASH_BASED', names), 'TRAFFIC_SPLIT_STRATEGY_HASH_BASED');
    assert.equal(splitStrategy(undefined, names), undefined);
    await assert.rejects(client.createTest({ name: 'x', strategy: 'MULTI_ARMED_BANDIT' }),
      (err) => err instanceof UnknownStrategyError && err.field === 'strategy'
        && /strategy "MULTI_ARMED_BANDIT" is not a TrafficSplitStrategy; use one of TRAFFIC_SPLIT_STRATEGY_HASH_BASED/.test(err.message));
    await assert.rejects(client.createTest({ name: 'x', strategy: 9 }), /strategy 9 is not/);
  } finally {
    client.close();
  }
});

test('a route watch that cannot reach the control plane retries, or stops when told to', async () => {
  const { NeuralMLOpsClient, MLOpsError } = require('../src');
  const client = new NeuralMLOpsClient('127.0.0.1:1', { deadlineMs: 5000 }); // nothing listens
  const errors = [];
  const once = client.followRoutes({ reconnect: false, onError: (e) => errors.push(e) });
  const retrying = [];
  let follower = null;
  try {
    await assert.rejects(once.ready(20000),
      (err) => err instanceof MLOpsError && err.status === 'UNAVAILABLE');
    assert.equal(errors.length, 1);
    assert.equal(once.error, errors[0]);
    await assert.rejects(once.waitForVersion(5), (err) => err === errors[0]);
    assert.equal(once.router.version, 0);
    // By default the stream is reopened (with backoff) until the follower is closed.
    await new Promise((resolve) => {
      follower = client.followRoutes({
        onError: (e) => { retrying.push(e); if (retrying.length === 3) resolve(); },
      });
    });
    assert.equal(follower.error, null);
    assert.ok(follower.reconnects >= 2 && follower.lastError.status === 'UNAVAILABLE');
    const waiting = follower.waitForVersion(1, 60000);
    follower.close();
    await assert.rejects(waiting, /the route follower is closed/);
  } finally {
    once.close();
    if (follower) follower.close();
    client.close();
  }
});
