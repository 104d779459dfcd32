// Time series the pages chart, from RoutingService.GetTrafficSeries: a route's (an A/B
// test's or a deployment's) or a shadow's traffic per time window, oldest first.
import { rpc } from "../api.js";

const MAX_PAGES = 20; // 20 pages of 500 windows: far more than a chart can show

async function windows(routeId, shadow) {
  const out = [];
  let token = "";
  for (let i = 0; i < MAX_PAGES; i += 1) {
    const r = await rpc("RoutingService", "GetTrafficSeries",
      { route_id: routeId, shadow, page_token: token });
    out.push(...(r.windows || []));
    token = r.next_page_token || "";
    if (!token) break;
  }
  return out;
}

const seconds = (w) => Number(w.window_start_us) / 1e6;
const nullable = (v) => (v === undefined || v === null || Number(v) < 0 ? null : Number(v));

// An experiment: each variant's cumulative success rate and the cumulative p-value of
// each non-baseline variant (pooled two-proportion z-test against control) per window.
export async function experimentSeries(test) {
  const ws = await windows(test.test_id, false);
  const names = (test.variants || []).map((v) => v.name);
  const out = { x: ws.map(seconds), rate: {}, p: {} };
  for (const n of names) {
    out.rate[n] = [];
    if (n !== test.control) out.p[n] = [];
  }
  const last = {};
  for (const w of ws) {
    const byName = Object.fromEntries((w.variants || []).map((v) => [v.variant, v]));
    for (const n of names) {
      const v = byName[n] || last[n];
      if (byName[n]) last[n] = byName[n];
      const count = v ? Number(v.cumulative_count) : 0;
      out.rate[n].push(count ? Number(v.cumulative_successes) / count : null);
      if (n in out.p) out.p[n].push(v ? nullable(v.cumulative_p_value) : null);
    }
  }
  return out;
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
