'use strict';
// Targeting conditions: the Node client evaluates them as the sidecar does
// (targeting_vectors.json, generated from the sidecar's router and targeting.py and
// replayed by tests/test_targeting_vectors.py too; TARGETING.md is the specification).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const {
  LocalRouter, RequestAttributes, RouteRejectedError, ConditionError, targeting, attributes,
} = require('../src');

const vectorsPath = path.resolve(__dirname, '..', '..', '..', 'protos', 'neural', 'mlops', 'v1',
  'targeting_vectors.json');
const vectors = JSON.parse(fs.readFileSync(vectorsPath, 'utf8'));

// gRPC parameters as @grpc/proto-loader (oneofs: true) gives an InferParameter.
const loaded = (params) => Object.fromEntries(Object.entries(params).map(
  ([k, p]) => [k, { ...p, parameter_choice: Object.keys(p)[0] }],
));

/** Every way a caller may hand the request's attributes to the client. */
function forms(req) {
  if (req.body !== undefined) {
    return [{ headers: req.headers, body: Buffer.from(req.body, 'utf8') },
      { headers: req.headers, body: req.body }];
  }
  if (req.grpc_params !== undefined) {
    return [{ headers: req.headers, params: loaded(req.grpc_params) },
      { headers: req.headers, params: req.grpc_params }];
  }
  const out = [{ headers: req.headers }];
  const names = req.headers.map(([k]) => k.toLowerCase());
  if (new Set(names).size === names.length) out.push({ headers: Object.fromEntries(req.headers) });
  return out;
}

const oneTest = (conds) => ({
  version: '1',
  routes: [{ model_name: 'm', route_id: 't', kind: 'ROUTE_KIND_EXPERIMENT', targeting: conds,
    variants: [{ name: 'in', weight: 1 }] }],
});

test('canonical texts of the wire conditions are the vectors\'', () => {
  for (const c of vectors.cases) {
    assert.deepEqual(c.targeting.map(targeting.format), c.texts, c.name);
  }
});

test('every request matches as the sidecar decided (matcher and LocalRouter)', () => {
  let checked = 0;
  for (const c of vectors.cases) {
    const matcher = targeting.compile(c.targeting);
    const router = new LocalRouter();
    router.apply(oneTest(c.targeting));
    assert.equal(router.rejected.size, 0, c.name);
    for (const req of c.requests) {
      for (const form of forms(req)) {
        const where = `${c.name}: ${JSON.stringify(form)}`;
        assert.equal(matcher.matches(new RequestAttributes(form).get), req.matched, where);
        assert.equal(router.assign('t', 'unit-1', form), req.matched ? 'in' : null, where);
        checked += 1;
      }
    }
  }
  assert.ok(checked > 400, `${checked} checked`);
});

test('refused conditions name the field as the reference does; the route is rejected', () => {
  for (const bad of vectors.invalid) {
    assert.throws(() => targeting.validate(bad.targeting), (err) => {
      assert.ok(err instanceof ConditionError);
      assert.equal(err.field, bad.field);
      assert.equal(err.message, bad.error);
      return true;
    });
    const router = new LocalRouter();
    router.apply(oneTest(bad.targeting));
    const err = router.rejected.get('t');
    assert.ok(err instanceof RouteRejectedError, bad.error);
    assert.equal(err.field, bad.field);
    assert.throws(() => router.assign('t', 'u'), /was rejected: targeting/);
  }
});

test('a model\'s routes resolve as the sidecar resolved them (label, tests, each route)', () => {
  const router = new LocalRouter();
  router.apply(vectors.routing.table);
  assert.equal(router.rejected.size, 0);
  for (const req of vectors.routing.requests) {
    const form = { forced: req.forced, headers: req.headers };
    if (req.body !== undefined) form.body = req.body;
    const where = JSON.stringify(req);
    const got = router.resolve(req.model, req.unit, form);
    assert.equal(got.label, req.label, where);
    assert.deepEqual(got.tests, req.tests, where);
    for (const [routeId, arm] of Object.entries(req.arms)) {
      assert.equal(router.assign(routeId, req.unit, form), arm, `${routeId}: ${where}`);
    }
  }
});

test('without attributes a request has no headers and no parameters', () => {
  const router = new LocalRouter();
  router.apply({ version: '1', routes: [
    ...oneTest([{ attribute: 'x-beta', op: 'OPERATOR_NOT_EXISTS' }]).routes,
    { ...oneTest([{ attribute: 'x-beta', op: 'OPERATOR_EXISTS' }]).routes[0], model_name: 'n',
      route_id: 't2' },
  ] });
  assert.equal(router.assign('t', 'u'), 'in');
  assert.equal(router.assign('t2', 'u'), null);
  assert.equal(router.assign('t2', 'u', { headers: { 'X-Beta': '' } }), 'in');
  assert.equal(router.resolve('n', 'u').label, '');
});

test('semantic versions: precedence and what is not a version', () => {
  const order = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta',
    '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '2.0.0', '12.0.0'];
  for (let i = 1; i < order.length; i += 1) {
    const [a, b] = [order[i - 1], order[i]].map(targeting.versionKey);
    assert.equal(targeting.compareVersions(a, b), -1, `${order[i - 1]} < ${order[i]}`);
  }
  const k = (v) => targeting.versionKey(v);
  assert.equal(targeting.compareVersions(k('v4.2'), k('4.2.0+build.1')), 0);
  assert.equal(targeting.compareVersions(k('1' + '0'.repeat(40)), k('9'.repeat(40))), 1);
  for (const bad of ['', 'v', '1.2.3.4', '01.2', '1.2-', '1.2+', '1..2', '1.0.0-01', ' 1']) {
    assert.equal(k(bad), null, JSON.stringify(bad));
  }
});

test('parameter values read as Python reads them', () => {
  const { pythonFloat, paramText, parametersOf } = attributes;
  assert.deepEqual([1e16, 1e15, 1e-5, 1e-4, -0, 0.1 + 0.2, 1.5e300, 100].map(pythonFloat),
    ['1e+16', '1000000000000000.0', '1e-05', '0.0001', '-0.0', '0.30000000000000004',
      '1.5e+300', '100.0']);
  assert.deepEqual([true, 'x', 10, 10n, 2.5, null, [1], { a: 1 }].map(paramText),
    ['true', 'x', '10', '10', '2.5', null, null, null]);
  assert.equal(paramText({ double_param: 10, parameter_choice: 'double_param' }), '10.0');
  assert.equal(paramText({ int64_param: '-5' }), '-5');
  const p = parametersOf('{"parameters": {"a": 1.0, "b": 1, "c": NaN, "a": 2.50, "__proto__": "x"}}');
  assert.deepEqual([...p], [['a', '2.5'], ['b', '1'], ['c', 'nan'], ['__proto__', 'x']]);
  assert.equal(parametersOf('{"parameters": {"a": 1}').size, 0);
  assert.equal(parametersOf(Buffer.from([0x7b, 0xff, 0x7d])).size, 0); // not UTF-8
});
