'use strict';
// A routing table applied locally: the arm a sidecar would give a unit on one route
// (ASSIGNMENT.md; the sidecar's router.py and sticky.py are the reference). Strategies:
// HASH (and UNSPECIFIED), RANDOM, ROUND_ROBIN and BANDIT, which is HASH by the route's
// current weights plus a per-process memory of each unit's first arm (StickyArms), shared
// by every bandit route of the router as in a sidecar process. Each route's targeting
// (TARGETING.md) is applied to the request's attributes, and a model's routes resolve
// together as in the sidecar (plan.js: header routes, the deployment, one test per layer).
const { bucket, pickIndex } = require('./assignment');
const { StickyArms, DEFAULT_STICKY_UNITS } = require('./sticky');
const targeting = require('./targeting');
const { RequestAttributes } = require('./attributes');
const { ModelPlan } = require('./plan');

const HASH = 'hash';
const RANDOM = 'random';
const ROUND_ROBIN = 'round_robin';
const BANDIT = 'bandit';

// ModelRoute.strategy as @grpc/proto-loader gives it (enum name, or its number when the
// loader does not know the value), and the short names the control plane's JSON uses.
const STRATEGIES = new Map([
  ['ASSIGNMENT_STRATEGY_UNSPECIFIED', HASH], ['ASSIGNMENT_STRATEGY_HASH', HASH],
  ['ASSIGNMENT_STRATEGY_RANDOM', RANDOM], ['ASSIGNMENT_STRATEGY_ROUND_ROBIN', ROUND_ROBIN],
  ['ASSIGNMENT_STRATEGY_BANDIT', BANDIT],
  [0, HASH], [1, HASH], [2, RANDOM], [3, ROUND_ROBIN], [4, BANDIT],
  [HASH, HASH], [RANDOM, RANDOM], [ROUND_ROBIN, ROUND_ROBIN], [BANDIT, BANDIT],
]);
const KNOWN = 'ASSIGNMENT_STRATEGY_HASH, _RANDOM, _ROUND_ROBIN, _BANDIT (or UNSPECIFIED = HASH)';
const WEIGHT_TOLERANCE = 1e-9;

/** A strategy this client does not know: a route's (a newer control plane), or one
 *  given to createTest (`field` = "strategy"; never sent: the wire would turn an unknown
 *  enum name into UNSPECIFIED, i.e. a HASH test). */
class UnknownStrategyError extends Error {
  constructor(message, { routeId = null, strategy, field = null }) {
    super(message);
    this.name = 'UnknownStrategyError';
    this.status = 'INVALID_ARGUMENT';
    this.reason = 'UNKNOWN_STRATEGY';
    this.routeId = routeId;
    this.strategy = strategy;
    this.field = field;
  }

  static ofRoute(routeId, modelName, strategy) {
    return new UnknownStrategyError(`route ${JSON.stringify(routeId)} (model `
      + `${JSON.stringify(modelName)}) has assignment strategy ${JSON.stringify(strategy)}, `
      + `which this client does not implement; known: ${KNOWN}. Upgrade `
      + '@neural-mlops/client to assign it locally, or ask the control plane (getVariant)',
    { routeId, strategy });
  }
}

// CreateTestRequest.strategy: the enum's names and numbers from the contract, and the
// Python API's lower-case names.
const SPLIT_PREFIX = 'TRAFFIC_SPLIT_STRATEGY_';

/** The TrafficSplitStrategy enum name for `value`, or undefined when not given; throws
 *  UnknownStrategyError for anything else. `names` maps the enum's names to numbers. */
function splitStrategy(value, names) {
  if (value === undefined || value === null || value === '') return undefined;
  const byNumber = new Map(Object.entries(names).map(([n, v]) => [v, n]));
  if (typeof value === 'number' && byNumber.has(value)) return byNumber.get(value);
  if (typeof value === 'string') {
    if (Object.hasOwn(names, value)) return value;
    const upper = SPLIT_PREFIX + value.toUpperCase();
    if (value === value.toLowerCase() && Object.hasOwn(names, upper)) return upper;
  }
  const known = Object.keys(names).filter((n) => !n.endsWith('_UNSPECIFIED'));
  throw new UnknownStrategyError(`strategy ${JSON.stringify(value)} is not a `
    + `TrafficSplitStrategy; use one of ${known.join(', ')} (or ${known.map(
      (n) => n.slice(SPLIT_PREFIX.length).toLowerCase()).join(', ')})`,
  { strategy: value, field: 'strategy' });
}

/** A route this client cannot serve (bad weights, an override to no variant, ...). */
class RouteRejectedError extends Error {
  constructor(routeId, why, field = null) {
    super(`route ${JSON.stringify(routeId)} was rejected: ${why}`);
    this.name = 'RouteRejectedError';
    this.routeId = routeId;
    this.field = field; // 'targeting[0].values[0]' and the like, when a condition was wrong
  }
}

function strategyOf(r) {
  const raw = r.strategy === undefined || r.strategy === null ? 0 : r.strategy;
  const s = STRATEGIES.get(raw);
  if (s === undefined) throw UnknownStrategyError.ofRoute(r.route_id, r.model_name, raw);
  return s;
}

/** Neumaier's compensated sum: Python's math.fsum within far less than the tolerance. */
function accurateSum(values) {
  let sum = 0;
  let carry = 0;
  for (const v of values) {
    const t = sum + v;
    carry += Math.abs(sum) >= Math.abs(v) ? (sum - t) + v : (v - t) + sum;
    sum = t;
  }
  return sum + carry;
}

/** The checks of assignment.validate_weights (the sidecar rejects such a route). */
function validateWeights(weights) {
  if (weights.length === 0) throw new RangeError('a route needs at least one variant');
  for (const w of weights) {
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0 || w > 1) {
      throw new RangeError(`weight ${w} is not in [0, 1]`);
    }
  }
  if (!weights.some((w) => w > 0)) throw new RangeError('at least one weight must be positive');
  const total = accurateSum(weights);
  if (Math.abs(total - 1) > WEIGHT_TOLERANCE) throw new RangeError(`weights sum to ${total}, not 1`);
}

const isExperiment = (kind) => kind === 'ROUTE_KIND_EXPERIMENT' || kind === 1;

/** An experiment route's [start, end) of its layer; other routes (and both ends 0, an
 *  older control plane) take the whole space, as the sidecar's router._range. */
function rangeOf(r) {
  const lo = r.range_start || 0;
  const hi = r.range_end || 0;
  if (!isExperiment(r.kind) || (lo === 0 && hi === 0)) return [0, 1];
  if (!(lo >= 0 && lo < hi && hi <= 1)) throw new RangeError(`range [${lo}, ${hi}) is not within [0, 1]`);
  return [lo, hi];
}

class CompiledRoute {
  constructor(r, sticky) {
    const variants = r.variants || [];
    this.routeId = r.route_id || '';
    this.modelName = r.model_name || '';
    this.strategy = strategyOf(r);
    this.names = variants.map((v) => v.name);
    this.weights = variants.map((v) => (v.weight === undefined ? 0 : v.weight));
    validateWeights(this.weights);
    this.forced = new Map((r.forced_variants || []).map((f) => [f.unit_id, f.variant]));
    for (const [unit, name] of this.forced) {
      if (!this.names.includes(name)) {
        throw new RangeError(`forced variant ${JSON.stringify(name)} for ${JSON.stringify(unit)} is not a variant`);
      }
    }
    [this.rangeStart, this.rangeEnd] = rangeOf(r);
    this.experiment = isExperiment(r.kind);
    this.full = this.rangeStart <= 0 && this.rangeEnd >= 1;
    const conds = r.targeting || [];
    this.matcher = conds.length ? targeting.compile(conds) : null; // null: every request
    this.steers = variants.some((v) => (v.model_name && v.model_name !== this.modelName)
      || v.model_version || v.upstream);
    this.headerRoutes = (r.header_routes || []).filter((h) => this.names.includes(h.variant))
      .map((h) => [String(h.header).toLowerCase(), h.value, h.variant]);
    this.layerId = r.layer_id || this.routeId;
    this.sticky = this.strategy === BANDIT ? sticky : null;
    this.current = this.weights.map(() => 0); // ROUND_ROBIN counters, per compiled table
  }

  /** Whether the unit's layer bucket lies in [rangeStart, rangeEnd) (a random one for a
   *  request without a unit). Overrides and targeting are the plan's (plan.js). */
  holds(unitId) {
    if (this.full) return true;
    const b = unitId === null ? Math.random() : bucket(this.layerId, unitId);
    return this.rangeStart <= b && b < this.rangeEnd;
  }

  /** The arm's name, as the sidecar's Route.choose. */
  choose(unitId, forced) {
    if (forced !== null && this.names.includes(forced)) return forced;
    const hashed = this.strategy === HASH || this.strategy === BANDIT;
    if (unitId === null && hashed) return this.names[pickIndex(Math.random(), this.weights)];
    if (this.sticky && unitId !== null && !this.forced.has(unitId)) return this.remembered(unitId);
    return this.names[this.chooseIndex(unitId)];
  }

  remembered(unitId) {
    const name = this.sticky.get(this.routeId, unitId);
    if (name !== null && this.names.includes(name)) return name;
    const arm = this.names[pickIndex(bucket(this.routeId, unitId), this.weights)];
    this.sticky.put(this.routeId, unitId, arm);
    return arm;
  }

  chooseIndex(unitId) {
    if (unitId !== null && this.forced.has(unitId)) return this.names.indexOf(this.forced.get(unitId));
    if (this.strategy === RANDOM) return pickIndex(Math.random(), this.weights);
    if (this.strategy === ROUND_ROBIN) return this.nextRoundRobin();
    return pickIndex(bucket(this.routeId, unitId), this.weights);
  }

  /** Smooth weighted round-robin (nginx), as assignment.Assigner. */
  nextRoundRobin() {
    let best = -1;
    for (let i = 0; i < this.weights.length; i += 1) {
      if (this.weights[i] > 0) {
        this.current[i] += this.weights[i];
        if (best < 0 || this.current[i] > this.current[best]) best = i;
      }
    }
    this.current[best] -= 1;
    return best;
  }
}

class LocalRouter {
  /** @param {{stickyUnits?: number, sticky?: StickyArms}} options the sticky memory's
   *  size (as a sidecar's --sticky-units), or a StickyArms to share */
  constructor(options = {}) {
    this.sticky = options.sticky || new StickyArms(options.stickyUnits === undefined
      ? DEFAULT_STICKY_UNITS : options.stickyUnits);
    this.version = 0;
    this.routes = new Map(); // route id -> CompiledRoute
    this.plans = new Map(); // model name -> ModelPlan
    this.rejected = new Map(); // route id -> the Error that rejected it
  }

  /** Replace the table (a RoutingTable message or the same shape as a plain object).
   *  A route that cannot be compiled is left out and its error kept in `rejected`;
   *  the sticky memory survives (that is the point). Returns the table's version. */
  apply(table) {
    const routes = new Map();
    const rejected = new Map();
    const byModel = new Map();
    for (const r of table.routes || []) {
      try {
        const c = new CompiledRoute(r, this.sticky);
        routes.set(r.route_id, c);
        if (!byModel.has(c.modelName)) byModel.set(c.modelName, []);
        byModel.get(c.modelName).push(c);
      } catch (err) {
        rejected.set(r.route_id, err instanceof UnknownStrategyError
          ? err : new RouteRejectedError(r.route_id, err.message, err.field || null));
      }
    }
    this.routes = routes;
    this.rejected = rejected;
    this.plans = new Map([...byModel].map(([m, rs]) => [m, new ModelPlan(rs)]));
    this.version = Number(table.version || 0);
    return this.version;
  }

  route(routeId) {
    const r = this.routes.get(routeId);
    if (r !== undefined) return r;
    const err = this.rejected.get(routeId);
    if (err !== undefined) throw err;
    const known = [...this.routes.keys()].slice(0, 5).map((k) => JSON.stringify(k)).join(', ');
    const e = new Error(`no route ${JSON.stringify(routeId)} in routing table version `
      + `${this.version} (a test that is not running has none; routes: ${known || 'none'})`);
    e.name = 'RouteNotFoundError';
    throw e;
  }

  /**
   * The arm a sidecar of this process's history gives `unitId` on route `routeId` (a test
   * id or deployment id), or null when the request is not in the test (outside its range
   * of its layer, its targeting does not match, another test of the layer or a header
   * route took it, or the deployment served it its new version's share).
   * `forced` is the caller's x-neural-variant (wins when it names a variant of the route).
   * A unit id of null/undefined is a request without a routing key (random by weight).
   * The request's attributes for targeting: `attributes` (a RequestAttributes) or
   * `headers` / `params` / `body` (see RequestAttributes); none given: a request with no
   * headers and no parameters (only `not exists` conditions match it).
   */
  assign(routeId, unitId, options = {}) {
    const r = this.route(routeId);
    const unit = unitId === undefined ? null : unitId;
    const forced = options.forced === undefined ? null : options.forced;
    const attrs = attributesOf(options);
    const plan = this.plans.get(r.modelName);
    if (!plan.kept.has(r)) return null; // left out of the plan, as the sidecar does
    if (attrs !== null && plan.headers.size) {
      const hit = plan.headerRoute(attrs);
      if (hit !== null) return hit[0] === r ? hit[1] : null;
    }
    const get = attrs !== null ? attrs.get : () => null;
    if (!r.experiment) return ModelPlan.deployment(r, unit, get, forced);
    const d = plan.default;
    if (d !== null && d.names.length > 1
      && ModelPlan.deployment(d, unit, get, forced) === d.names[0]) return null;
    const layer = plan.layers.find((l) => l.layerId === r.layerId);
    return plan.inLayer(layer, unit, get, forced) === r ? r.choose(unit, forced) : null;
  }

  /**
   * Where a sidecar sends one request for `modelName` (null: the model has no route):
   * {variant, label, tests: [[test id, arm]], deployment} (plan.js). Options as assign.
   */
  resolve(modelName, unitId, options = {}) {
    const plan = this.plans.get(modelName);
    if (plan === undefined) return null;
    const { variant, label, tests, deployment } = plan.resolve(
      unitId === undefined ? null : unitId, attributesOf(options),
      options.forced === undefined ? null : options.forced,
    );
    return { variant, label, tests, deployment };
  }

  /** The route's current weights by arm name (a bandit's allocation now). */
  weights(routeId) {
    const r = this.route(routeId);
    return Object.fromEntries(r.names.map((n, i) => [n, r.weights[i]]));
  }
}

/** The request's attributes from assign/resolve options (null: none given). */
function attributesOf(options) {
  const a = options.attributes;
  if (a) return typeof a.get === 'function' ? a : new RequestAttributes(a);
  const { headers, params, body } = options;
  if (headers === undefined && params === undefined && body === undefined) return null;
  return new RequestAttributes({ headers, params, body });
}

module.exports = {
  LocalRouter, CompiledRoute, UnknownStrategyError, RouteRejectedError, strategyOf,
  splitStrategy, validateWeights, STRATEGIES: { HASH, RANDOM, ROUND_ROBIN, BANDIT },
};
