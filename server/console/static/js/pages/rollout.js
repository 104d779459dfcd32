// Rollout: the step plan and where it is, canary weight / error rate / p95 against their
// thresholds over time, the decision log with the measured values, and the operator's
// actions (promote, pause, resume, abort, rollback) with a reason.
import { rpc } from "../api.js";
import { timeChart } from "../charts.js";
import { badge, clear, enumName, h, kv, ms, num, pct, section, table, when } from "../dom.js";
import { actionButton, describe, flash } from "../ui.js";

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

function charts(d, events, weightBox, errBox, latBox) {
  const points = events.map((e) => ({ t: Date.parse(e.at) / 1000, pct: e.traffic_percentage,
    x: details(e) }));
  const cfg = d.rollback_config || {};
  const base = d.baseline_metrics || {};
  const x = points.map((p) => p.t);
  timeChart(weightBox, x, [{ label: "canary weight %", values: points.map((p) => p.pct) }],
    { title: "Canary weight", height: 160 });
  const measured = points.map((p) => p.x.measured || null);
  const errThreshold = cfg.error_rate_threshold;
  timeChart(errBox, x, [
    { label: "canary error rate", values: measured.map((m) => (m ? m.error_rate : null)) },
    { label: "stable error rate", values: points.map((p) => (p.x.stable
      ? p.x.stable.error_rate : null)), color: "#16a34a" },
    { label: "threshold", values: x.map(() => errThreshold ?? null), dash: [6, 4],
      color: "#6b7280" },
  ], { title: "Error rate vs threshold", height: 180 });
  const p95Limit = base.latency_p95 && cfg.latency_threshold_multiplier
    ? base.latency_p95 * cfg.latency_threshold_multiplier : null;
  timeChart(latBox, x, [
    { label: "canary p95 (s)", values: measured.map((m) => (m ? m.latency_p95 : null)) },
    { label: "stable p95 (s)", values: points.map((p) => (p.x.stable
      ? p.x.stable.latency_p95 : null)), color: "#16a34a" },
    { label: "limit", values: x.map(() => p95Limit), dash: [6, 4], color: "#6b7280" },
  ], { title: "p95 latency vs limit", height: 180 });
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
    const [d, events] = await Promise.all([rpc(SVC, "GetDeployment", { deployment_id: id }),
      allEvents(id)]);
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
    charts(d, events, weightBox, errBox, latBox);
    clear(logBox, log(events));
  };
  await refresh();
  return { topics: ["deployments"], refresh };
}
