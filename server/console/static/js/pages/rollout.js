// Rollout: the step plan and where it is, canary weight / error rate / p95 against their
// thresholds over time, the decision log with the measured values, and the operator's
// actions (promote, pause, resume, abort, rollback) with a reason.
import { rpc } from "../api.js";
import { timeChart } from "../charts.js";
import { badge, clear, enumName, h, kv, ms, num, pct, section, table, when } from "../dom.js";
import { actionButton, describe, flash } from "../ui.js";
import { rolloutSeries } from "./series.js";

const SVC = "DeploymentService";
const status = (d) => enumName(d.status, "DEPLOYMENT_STATUS_");

function plan(d) {
  const steps = (d.plan && d.plan.steps) || [];
  const done = ["completed"].includes(status(d));
  return h("ol", { class: "steps", id: "steps" }, steps.map((p, i) => {
    let state = i < (d.step_index || 0) ? "done" : i === (d.step_index || 0) ? "current" : "todo";
    if (done) state = "done";
    return h("li", { class: state }, `${num(p)}%`);
  }));
}

async function allEvents(id) {
  const events = [];
  let token = "";
  for (let i = 0; i < 100; i += 1) { // at most 100 pages on screen
    const r = await rpc(SVC, "ListDeploymentEvents",
      token ? { deployment_id: id, page_token: token } : { deployment_id: id });
    events.push(...(r.events || []));
    token = r.next_page_token || "";
    if (!token) break;
  }
  return events;
}

function details(e) {
  try {
    return JSON.parse(e.details_json || "{}");
  } catch {
    return {};
  }
}

function measuredText(x) {
  const m = x.measured || {};
  if (!x.measured) return x.reason || (x.reasons || []).join("; ") || "";
  return `n=${num(m.request_count)} errors ${pct(m.error_rate)} p95 ${ms(m.latency_p95)}`
    + (x.reasons && x.reasons.length ? ` — ${x.reasons.join("; ")}` : "");
}

function log(events) {
  return table([
    { label: "#", get: (e) => e.seq, sort: (e) => Number(e.seq) },
    { label: "At", get: (e) => when(e.at) },
    { label: "Action", get: (e) => h("strong", {}, e.action) },
    { label: "By", get: (e) => e.actor },
    { label: "Status", get: (e) => `${enumName(e.from_status, "DEPLOYMENT_STATUS_") || "–"} → `
      + enumName(e.to_status, "DEPLOYMENT_STATUS_") },
    { label: "Weight", get: (e) => `${num(e.traffic_percentage)}%` },
    { label: "Measured / why", get: (e) => measuredText(details(e)) },
  ], [...events].reverse(), { empty: "No decision yet.", id: "decisions" });
}

// Canary weight from the decision log (it changes only there); error rate and p95 per
// traffic window and variant, against the rollback thresholds.
function charts(d, events, series, boxes) {
  const cfg = d.rollback_config || {};
  const base = d.baseline_metrics || {};
  const weights = events.map((e) => [Date.parse(e.at) / 1000, Number(e.traffic_percentage)]);
  if (weights.length && !["completed", "rolled_back", "aborted"].includes(status(d))) {
    weights.push([Date.now() / 1000, Number(d.traffic_percentage)]);
  }
  timeChart(boxes.weight, weights.map((w) => w[0]), [{ label: "canary weight %",
    values: weights.map((w) => w[1]), stepped: true }], { title: "Canary weight", height: 160 });
  const x = series.x;
  const perVariant = (values, label) => series.names.map((n) => ({ label: `${n} ${label}`,
    values: values[n] }));
  timeChart(boxes.errors, x, [
    ...perVariant(series.errors, "error rate"),
    { label: "rollback threshold", values: x.map(() => cfg.error_rate_threshold ?? null),
      dash: [6, 4], color: "#6b7280" },
  ], { title: "Error rate per minute vs threshold", height: 180 });
  const limit = base.latency_p95 && cfg.latency_threshold_multiplier
    ? base.latency_p95 * cfg.latency_threshold_multiplier : null;
  timeChart(boxes.latency, x, [
    ...perVariant(series.p95, "p95 (s)"),
    { label: "p95 limit (baseline × multiplier)", values: x.map(() => limit), dash: [6, 4],
      color: "#6b7280" },
  ], { title: "p95 latency per minute vs limit", height: 180 });
}

function actions(d, reason, reload) {
  const st = status(d);
  const active = st === "in_progress" || st === "paused";
  const body = (extra = {}) => () => ({ deployment_id: d.deployment_id, reason: reason.value,
    ...extra });
  const buttons = [
    active && actionButton("Promote one step", SVC, "Promote", body(), reload),
    active && actionButton("Promote fully", SVC, "Promote", body({ full: true }), reload,
      { kind: "primary" }),
    st === "in_progress" && actionButton("Pause", SVC, "Pause", body(), reload),
    st === "paused" && actionButton("Resume", SVC, "Resume", body(), reload),
    active && actionButton("Abort", SVC, "Abort", body(), reload, { kind: "danger" }),
    (active || st === "completed") && actionButton("Roll back", SVC, "Rollback", body(), reload,
      { kind: "danger" }),
  ].filter(Boolean);
  return buttons.length ? h("div", { class: "actions" }, reason, ...buttons) : null;
}

export async function render(main, id) {
  const head = h("div");
  const bar = h("div");
  const steps = h("div");
  const weightBox = h("div");
  const errBox = h("div");
  const latBox = h("div");
  const logBox = h("div");
  const reason = h("input", { type: "text", name: "reason", placeholder: "reason (audited)" });
  clear(main, head, bar, section("Step plan", steps),
    section("Over time", weightBox, h("div", { class: "columns" }, errBox, latBox)),
    section("Decision log", logBox));
  let drawnFor = "";
  const refresh = async () => {
    const [d, events, series] = await Promise.all([
      rpc(SVC, "GetDeployment", { deployment_id: id }), allEvents(id), rolloutSeries(id)]);
    const st = status(d);
    const m = d.current_metrics || {};
    clear(head, h("h1", {}, `Rollout ${d.model_name} ${d.stable_version} → ${d.model_version} `,
      h("span", { id: "rollout-status" }, badge(st))),
    kv([["Strategy", enumName(d.strategy, "DEPLOYMENT_STRATEGY_")],
      ["Canary weight", h("span", { id: "canary-weight" }, `${num(d.traffic_percentage)}%`)],
      ["Step", `${(d.step_index || 0) + 1} of ${((d.plan && d.plan.steps) || []).length}`],
      ["Why", d.status_reason], ["Rollback reasons", (d.rollback_reasons || []).join("; ")],
      ["Now", d.current_metrics ? `errors ${pct(m.error_rate)}, p95 ${ms(m.latency_p95)}, `
        + `${num(m.request_count)} requests` : ""],
      ["Last check", d.last_check ? `${enumName(d.last_check.verdict, "VERDICT_")} at `
        + when(d.last_check.at) : ""],
      ["Created", `${when(d.created_at)} by ${d.created_by}`]]));
    if (drawnFor !== st) {
      drawnFor = st;
      clear(bar, actions(d, reason, () => refresh().catch((err) => flash(describe(err)))));
    }
    clear(steps, plan(d));
    charts(d, events, series, { weight: weightBox, errors: errBox, latency: latBox });
    clear(logBox, log(events));
  };
  await refresh();
  return { topics: ["deployments"], refresh };
}
