// Shadow: agreement over time, the latency distributions of both sides, and sample
// disagreements (primary vs shadow answers).
import { rpc } from "../api.js";
import { histogram, timeChart } from "../charts.js";
import { badge, clear, enumName, h, kv, num, pct, section, table, when } from "../dom.js";
import { actionButton, describe, flash } from "../ui.js";
import { shadowSeries } from "./series.js";

const SVC = "DeploymentService";

function quantileBars(c) {
  const keys = ["p50", "mean", "p95", "p99"];
  const side = (s) => keys.map((k) => (s && s[k] ? s[k] * 1000 : 0));
  return histogram([...keys, ""], [
    { label: `primary (${num((c.primary_latency || {}).count)} calls)`,
      counts: side(c.primary_latency) },
    { label: `shadow (${num((c.shadow_latency || {}).count)} calls)`,
      counts: side(c.shadow_latency) },
  ], { unit: "", title: "Latency quantiles (ms)" });
}

// A sample is {request_id, primary, shadow} (the contract's ShadowStats); the newest ten.
function samples(c, fromSeries) {
  const rows = (fromSeries.length ? fromSeries : c.disagreement_samples || []).slice(-10)
    .reverse();
  return table([
    { label: "Request", get: (r) => h("code", {}, r.request_id || "–") },
    { label: "Primary answered", get: (r) => h("code", {}, short(r.primary)) },
    { label: "Shadow answered", get: (r) => h("code", {}, short(r.shadow)) },
  ], rows, { empty: "No disagreement sampled.", id: "disagreements" });
}

function short(v) {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s && s.length > 160 ? `${s.slice(0, 160)}…` : s || "–";
}

export async function render(main, id) {
  const head = h("div");
  const overTime = h("div");
  const latency = h("div");
  const sampleBox = h("div");
  const bar = h("div");
  clear(main, head, bar, section("Agreement over time", overTime),
    h("div", { class: "columns" }, section("Latency", latency),
      section("Sample disagreements", sampleBox)));
  let drawnFor = "";
  const refresh = async () => {
    const [s, cmp] = await Promise.all([rpc(SVC, "GetShadow", { shadow_id: id }),
      rpc(SVC, "CompareShadow", { shadow_id: id })]);
    const c = JSON.parse(cmp.result_json || "{}");
    const st = enumName(s.status, "SHADOW_STATUS_");
    clear(head, h("h1", {}, `Shadow ${s.primary_model} ⇢ ${s.shadow_model} `, badge(st)),
      kv([["Mirrored share", `${num(s.traffic_percentage)}%`],
        ["Agreement", h("span", { id: "agreement" }, `${pct(c.agreement_rate)} of ${num(c.n)}`)],
        ["Verdict", badge(String(c.verdict || "wait").toLowerCase())],
        ["Why", (c.reasons || []).join("; ")],
        ["Errors primary / shadow", `${pct(c.primary_error_rate)} / ${pct(c.shadow_error_rate)}`],
        ["p95 ratio (shadow / primary)", num(c.latency_ratio_p95)],
        ["Mirrored / dropped", `${num(c.mirrored)} / ${num(c.dropped)}`],
        ["Started", `${when(s.created_at)} by ${s.created_by}`]]));
    if (drawnFor !== st) {
      drawnFor = st;
      clear(bar, st === "active" ? h("div", { class: "actions" }, actionButton("Stop shadow",
        SVC, "StopShadow", () => ({ shadow_id: id }),
        () => refresh().catch((err) => flash(describe(err))), { kind: "danger" })) : null);
    }
    const series = await shadowSeries(id);
    timeChart(overTime, series.x, [{ label: "agreement rate per minute",
      values: series.agreement, scale: "p" }], { title: "" });
    clear(latency, series.histogram ? histogram(series.histogram.edges, series.histogram.groups,
      { title: "Latency distribution (all mirrored calls)" }) : quantileBars(c));
    clear(sampleBox, samples(c, series.samples));
  };
  await refresh();
  return { topics: ["deployments"], refresh };
}
