// Time series the pages chart. An experiment's cumulative metric and p-value over time:
// each point is AnalyzeTest over [start, t) (a ranged analysis: it neither reads nor moves
// the sequential running minimum), at POINTS times between the start and now.
import { rpc } from "../api.js";

const POINTS = 8;

function end(test) {
  return test.ended_at ? Date.parse(test.ended_at) : Date.now();
}

export async function experimentSeries(test) {
  const out = { x: [], rate: {}, p: [], pSeq: [] };
  if (!test.started_at) return out;
  const t0 = Date.parse(test.started_at);
  const t1 = end(test);
  if (!(t1 > t0)) return out;
  const times = Array.from({ length: POINTS }, (_, i) => t0 + ((t1 - t0) * (i + 1)) / POINTS);
  const results = await Promise.all(times.map((t) => rpc("ExperimentService", "AnalyzeTest",
    { test_id: test.test_id, until: new Date(Math.ceil(t / 60000) * 60000).toISOString() })
    .then((r) => JSON.parse(r.analysis_json || "{}")).catch(() => null)));
  const names = (test.variants || []).map((v) => v.name);
  for (const n of names) out.rate[n] = [];
  results.forEach((a, i) => {
    if (!a) return;
    out.x.push(times[i] / 1000);
    for (const n of names) {
      const v = (a.variants || {})[n];
      out.rate[n].push(v && v.n ? v.success_rate : null);
    }
    out.p.push(a.p_value ?? null);
    out.pSeq.push(a.sequential ? a.sequential.p_value ?? null : null);
  });
  return out;
}

// A shadow's agreement over time. Until the control plane keeps a history, the points
// are the comparisons this page has read since it opened.
const seen = new Map();

export async function shadowSeries(shadow, comparison) {
  const key = shadow.shadow_id;
  const points = seen.get(key) || [];
  if (comparison.n) points.push([Date.now() / 1000, comparison.agreement_rate]);
  seen.set(key, points.slice(-500));
  return { x: points.map((p) => p[0]), agreement: points.map((p) => p[1]), histogram: null };
}
