// Time series the pages chart, from RoutingService.GetTrafficSeries: a route's (an A/B
// test's or a deployment's) or a shadow's traffic per time window, oldest first.
import { rpc } from "../api.js";

const MAX_PAGES = 20; // a safety bound: with the step below one page is the rule
const MINUTE_US = 60_000_000;
export const MAX_POINTS = 300;
const NICE_MINUTES = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];

// The step (µs, a multiple of the one-minute window) that keeps a series from firstUs to
// nowUs at MAX_POINTS points or fewer: the backend adds a step's windows up, and its cost
// grows with the windows it returns.
export function stepFor(firstUs, nowUs, maxPoints = MAX_POINTS) {
  const minutes = Math.ceil(Math.max(0, nowUs - firstUs) / MINUTE_US / maxPoints);
  const nice = NICE_MINUTES.find((m) => m >= minutes) || Math.ceil(minutes / 1440) * 1440;
  return nice * MINUTE_US;
}

async function windows(routeId, shadow) {
  const probe = await rpc("RoutingService", "GetTrafficSeries",
    { route_id: routeId, shadow, page_size: 1 });
  const first = (probe.windows || [])[0];
  if (!first) return [];
  const step = stepFor(Number(first.window_start_us), Date.now() * 1000);
  const out = [];
  let token = "";
  for (let i = 0; i < MAX_PAGES; i += 1) {
    const r = await rpc("RoutingService", "GetTrafficSeries", { route_id: routeId, shadow,
      page_token: token, step_us: String(step), page_size: MAX_POINTS + 1 });
    out.push(...(r.windows || []));
    token = r.next_page_token || "";
    if (!token) break;
  }
  return out;
}

const seconds = (w) => Number(w.window_start_us) / 1e6;
const nullable = (v) => (v === undefined || v === null || Number(v) < 0 ? null : Number(v));

// An experiment: each variant's cumulative success rate and, per non-baseline variant,
// the cumulative p-value (pooled two-proportion z-test against control) and the
// sequential view: the always-valid p-value (the running minimum of the mSPRT looks at
// each point) and the confidence sequence of the rate difference (the running
// intersection of the looks' sequences), as AnalyzeTest keeps them over its looks.
export async function experimentSeries(test) {
  const ws = await windows(test.test_id, false);
  const names = (test.variants || []).map((v) => v.name);
  const out = { x: ws.map(seconds), rate: {}, p: {}, seqP: {}, low: {}, high: {} };
  for (const n of names) {
    out.rate[n] = [];
    if (n !== test.control) for (const k of ["p", "seqP", "low", "high"]) out[k][n] = [];
  }
  const last = {};
  const held = {};
  for (const w of ws) {
    const byName = Object.fromEntries((w.variants || []).map((v) => [v.variant, v]));
    for (const n of names) {
      const v = byName[n] || last[n];
      if (byName[n]) last[n] = byName[n];
      const count = v ? Number(v.cumulative_count) : 0;
      out.rate[n].push(count ? Number(v.cumulative_successes) / count : null);
      if (!(n in out.p)) continue;
      out.p[n].push(v ? nullable(v.cumulative_p_value) : null);
      held[n] = sequentialLook(held[n], byName[n]);
      out.seqP[n].push(held[n] ? held[n].p : null);
      out.low[n].push(held[n] ? held[n].low : null);
      out.high[n].push(held[n] ? held[n].high : null);
    }
  }
  return out;
}

// The running minimum p-value and intersected interval after one more look (v: a point
// with sequential_* fields, or undefined for a step without traffic of that variant).
function sequentialLook(before, v) {
  if (!v || v.sequential_p_value === undefined) return before;
  const p = Number(v.sequential_p_value);
  const low = Number(v.sequential_ci_low);
  const high = Number(v.sequential_ci_high);
  if (!before) return { p, low, high };
  return { p: Math.min(before.p, p), low: Math.max(before.low, low),
    high: Math.min(before.high, high) };
}

// A deployment: per window and variant, the error rate and p95 latency.
export async function rolloutSeries(deploymentId) {
  const ws = await windows(deploymentId, false);
  const names = [...new Set(ws.flatMap((w) => (w.variants || []).map((v) => v.variant)))];
  const out = { x: ws.map(seconds), names, errors: {}, p95: {}, count: {} };
  for (const n of names) {
    out.errors[n] = [];
    out.p95[n] = [];
    out.count[n] = [];
  }
  for (const w of ws) {
    const byName = Object.fromEntries((w.variants || []).map((v) => [v.variant, v]));
    for (const n of names) {
      const v = byName[n];
      const count = v ? Number(v.count) : 0;
      out.errors[n].push(count ? Number(v.errors) / count : null);
      out.p95[n].push(count && v.latency_p95_seconds ? Number(v.latency_p95_seconds) : null);
      out.count[n].push(count);
    }
  }
  return out;
}

function addBuckets(into, buckets) {
  for (const b of buckets || []) {
    const key = Number(b.upper_seconds);
    into.set(key, (into.get(key) || 0) + Number(b.count));
  }
}

// A shadow: agreement per window, both sides' latency histograms over all windows, and
// the sample disagreements (newest last).
export async function shadowSeries(shadowId) {
  const ws = await windows(shadowId, true);
  const primary = new Map();
  const shadow = new Map();
  const samples = [];
  const x = [];
  const agreement = [];
  for (const w of ws) {
    const s = w.shadow || {};
    const compared = Number(s.compared || 0);
    x.push(seconds(w));
    agreement.push(compared ? Number(s.agreements || 0) / compared : null);
    addBuckets(primary, s.primary_latency);
    addBuckets(shadow, s.shadow_latency);
    for (const d of s.disagreements_json || []) {
      try {
        samples.push(JSON.parse(d));
      } catch {
        samples.push({ raw: d });
      }
    }
  }
  const bounds = [...new Set([...primary.keys(), ...shadow.keys()])].sort((a, b) => a - b);
  const histogram = bounds.length ? {
    edges: [0, ...bounds].map((v) => v * 1000),
    groups: [
      { label: "primary", counts: bounds.map((b) => primary.get(b) || 0) },
      { label: "shadow", counts: bounds.map((b) => shadow.get(b) || 0) },
    ],
  } : null;
  return { x, agreement, histogram, samples: samples.slice(-50) };
}
