'use strict';
// One model's routes as the sidecar resolves a request (sidecar/layers.py is the
// reference; ASSIGNMENT.md "Layers", TARGETING.md): header routes first, then the
// deployment (a request its targeting does not match gets its last variant, the stable
// version; its first variant's share is served and no test sees the request), then at
// most one test per layer: a QA override or the caller's forced variant puts the unit in
// that test, otherwise the layer bucket must lie in the test's range and the test's
// targeting must match.

const absent = () => null;

/** Routes sharing a layer, sorted by range start; `whole`: one test over [0, 1). */
class Layer {
  constructor(layerId, routes, steers) {
    this.layerId = layerId;
    this.routes = [...routes].sort((a, b) => a.rangeStart - b.rangeStart);
    this.steers = steers;
  }

  /** The test whose range holds the unit's bucket, if its targeting matches. */
  pick(unitId, get) {
    const whole = this.routes.length === 1 && this.routes[0].full ? this.routes[0] : null;
    const r = whole || this.routes.find((x) => x.holds(unitId));
    if (!r) return null;
    return r.matcher === null || r.matcher.matches(get) ? r : null;
  }

  named(variant) {
    return this.routes.find((r) => r.names.includes(variant)) || null;
  }
}

function overlaps(a, b) {
  return a.rangeStart < b.rangeEnd && b.rangeStart < a.rangeEnd;
}

/** The model's tests grouped by layer, the steering layer first, the others by id; a
 *  second steering layer or a range overlapping an earlier test's is left out (as
 *  layers.layers_of; the control plane never sends such a table). */
function layersOf(tests) {
  const steering = (tests.find((r) => r.steers) || { layerId: null }).layerId;
  const grouped = new Map();
  const dropped = new Set();
  for (const r of tests) {
    const members = grouped.get(r.layerId) || [];
    if ((r.steers && r.layerId !== steering) || members.some((o) => overlaps(o, r))) {
      dropped.add(r.routeId);
    } else {
      members.push(r);
      grouped.set(r.layerId, members);
    }
  }
  const order = [...grouped.keys()].sort((a, b) => {
    if ((a === steering) !== (b === steering)) return a === steering ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0; // eslint-disable-line no-nested-ternary
  });
  return { layers: order.map((k) => new Layer(k, grouped.get(k), k === steering)), dropped };
}

class ModelPlan {
  /** @param {import('./routes').CompiledRoute[]} routes the model's compiled routes in
   *  table order */
  constructor(routes) {
    this.default = routes.find((r) => !r.experiment) || null;
    const { layers, dropped } = layersOf(routes.filter((r) => r.experiment));
    this.layers = layers;
    const kept = routes.filter((r) => (r.experiment ? !dropped.has(r.routeId) : r === this.default));
    this.kept = new Set(kept);
    this.headers = new Map(); // header -> value -> [route, variant]
    this.forcedUnits = new Map(); // unit -> the tests that pin it, in table order
    for (const r of kept) {
      for (const [header, value, variant] of r.headerRoutes) {
        if (!this.headers.has(header)) this.headers.set(header, new Map());
        const values = this.headers.get(header);
        if (!values.has(value)) values.set(value, [r, variant]);
      }
      if (r.experiment) {
        for (const unit of r.forced.keys()) {
          if (!this.forcedUnits.has(unit)) this.forcedUnits.set(unit, []);
          this.forcedUnits.get(unit).push(r);
        }
      }
    }
  }

  headerRoute(attrs) {
    for (const [header, values] of this.headers) {
      const v = attrs.get(header);
      if (v !== null && values.has(v)) return values.get(v);
    }
    return null;
  }

  /** The deployment's variant for the request. */
  static deployment(d, unitId, get, forced) {
    if (forced !== null && d.names.includes(forced)) return forced;
    if (d.matcher !== null && !d.matcher.matches(get)) return d.names[d.names.length - 1];
    return d.choose(unitId, null);
  }

  /** The layer's test this request is in (null: none). */
  inLayer(layer, unitId, get, forced) {
    const pinned = unitId !== null ? this.forcedUnits.get(unitId) : undefined;
    if (pinned !== undefined) {
      const r = pinned.find((x) => x.layerId === layer.layerId);
      if (r) return r;
    }
    if (forced !== null) {
      const named = layer.named(forced);
      if (named) return named;
    }
    return layer.pick(unitId, get);
  }

  /**
   * Where one request goes, as the sidecar's Plan.resolve: `variant` served (null: as
   * sent), `label` (its x-neural-variant, "" for none), `tests` [[test id, arm], ...] in
   * layer order (its x-neural-experiment), `deployment` the deployment's variant (null
   * when it has none or a header route decided).
   */
  resolve(unitId, attrs, forced) {
    if (this.headers.size && attrs !== null) {
      const hit = this.headerRoute(attrs);
      if (hit !== null) return { variant: hit[1], label: hit[1], tests: [], deployment: null, header: hit };
    }
    const get = attrs !== null ? attrs.get : absent;
    const d = this.default;
    const served = d !== null ? ModelPlan.deployment(d, unitId, get, forced) : null;
    if (d !== null && d.names.length > 1 && served === d.names[0]) {
      return { variant: served, label: served, tests: [], deployment: served, header: null };
    }
    let steered = null;
    const labels = [];
    const tests = [];
    for (const layer of this.layers) {
      const r = this.inLayer(layer, unitId, get, forced);
      if (r !== null) {
        const arm = r.choose(unitId, forced);
        tests.push([r.routeId, arm]);
        if (layer.steers) steered = arm;
        else labels.push(arm);
      }
    }
    const primary = steered !== null ? steered : served;
    const label = primary !== null ? primary : (labels[0] || '');
    return { variant: primary, label, tests, deployment: served, header: null };
  }
}

module.exports = { ModelPlan, Layer, layersOf };
