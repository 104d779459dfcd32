// Experiment: per-variant table, lift with its confidence interval, cumulative metric and
// p-value over time (with the significance boundary), SRM alarm, Bayesian chance to win,
// power and time to go, the recommendation and why, and the lifecycle actions.
import { can, rpc } from "../api.js";
import { intervalChart, timeChart } from "../charts.js";
import { badge, clear, enumName, h, kv, num, pct, section, table, when } from "../dom.js";
import { actionButton, describe, flash } from "../ui.js";
import { experimentSeries } from "./series.js";

const SVC = "ExperimentService";

function variantRows(a, test) {
  const byName = a.variants || {};
  return (test.variants || []).map((v) => ({ name: v.name, ...(byName[v.name] || {}),
    weight: v.weight, control: v.name === test.control }));
}

function variantsTable(a, test) {
  const rows = variantRows(a, test);
  const customs = [...new Set(rows.flatMap((r) => Object.keys(r.custom_metrics || {})))];
  return table([
    { label: "Variant", get: (r) => [r.name, r.control ? badge("control", "muted") : null],
      sort: (r) => r.name },
    { label: "Weight", get: (r) => pct(r.weight, 1), sort: (r) => r.weight },
    { label: "n", get: (r) => num(r.n), sort: (r) => r.n },
    { label: "Successes", get: (r) => num(r.successes), sort: (r) => r.successes },
    { label: "Success rate", get: (r) => pct(r.success_rate), sort: (r) => r.success_rate },
    { label: "Error rate", get: (r) => pct(r.error_rate), sort: (r) => r.error_rate },
    { label: "p50", get: (r) => num(r.latency && r.latency.p50 * 1000, 3) + " ms" },
    { label: "p95", get: (r) => num(r.latency && r.latency.p95 * 1000, 3) + " ms",
      sort: (r) => r.latency && r.latency.p95 },
    ...customs.map((c) => ({ label: c, get: (r) => num((r.custom_metrics || {})[c]
      && r.custom_metrics[c].mean) })),
  ], rows, { empty: "No variant.", id: "variants" });
}

function liftRows(a) {
  const comps = a.comparisons && Object.keys(a.comparisons).length
    ? Object.entries(a.comparisons) : [["treatment", a]];
  return comps.map(([name, c]) => {
    const imp = c.improvement || {};
    const ci = imp.relative_confidence_interval || [];
    return { label: name, estimate: imp.relative_improvement, low: ci[0], high: ci[1],
      significant: Boolean(c.statistically_significant) };
  });
}

function recommendation(a, resp) {
  const rec = a.recommendation || {};
  const action = rec.action || enumName(resp.recommendation, "RECOMMENDATION_") || "";
  return h("div", { class: "recommendation", id: "verdict" },
    badge((action || "no verdict").replace(/_/g, " "), action),
    rec.winner ? h("span", {}, ` winner: ${rec.winner}`) : null,
    h("p", {}, rec.reason || "Not enough data for a recommendation yet."));
}

function alarms(a) {
  const srm = a.srm || {};
  const items = [];
  if (srm.detected) {
    items.push(h("p", { class: "alarm", id: "srm-alarm" },
      `Sample ratio mismatch: p = ${num(srm.p_value)} < ${num(srm.threshold)}; the split `
      + "is not what was configured, so the results cannot be trusted."));
  } else {
    items.push(h("p", { class: "ok", id: "srm-ok" },
      `Sample ratio as configured (SRM p = ${num(srm.p_value)}).`));
  }
  for (const g of (a.recommendation && a.recommendation.guardrails) || []) {
    items.push(h("p", { class: "alarm" }, `Guardrail: ${g}`));
  }
  for (const w of a.warnings || []) items.push(h("p", { class: "muted" }, `Note: ${w}`));
  return items;
}

function bayes(a) {
  const b = a.bayesian || {};
  const loss = b.expected_loss || {};
  return kv([
    ["Chance to beat control", b.chance_to_beat_control === undefined ? "–"
      : pct(b.chance_to_beat_control, 1)],
    ["Expected loss if shipping", num(loss.ship_treatment)],
    ["Expected loss if keeping control", num(loss.keep_control)],
  ]);
}

function power(a) {
  const p = a.power || {};
  const left = p.estimated_seconds_remaining;
  return kv([
    ["Minimum detectable effect", pct(p.minimum_detectable_effect, 1)],
    ["Units needed (all arms)", num(p.required_total)],
    ["Observed", num(p.observed_total)],
    ["Progress", h("progress", { max: 1, value: p.progress || 0 }), ` ${pct(p.progress, 0)}`],
    ["Power reached", pct(p.achieved_power, 0)],
    ["Time to go", left === undefined || left === null ? "–" : duration(left)],
  ]);
}

const OPS = { EQ: "=", NEQ: "!=", IN: "in", NOT_IN: "not in", VERSION_GT: ">",
  VERSION_GTE: ">=", VERSION_LT: "<", VERSION_LTE: "<=", EXISTS: "exists",
  NOT_EXISTS: "not exists" };

// A targeting condition in its text form (`x-country in [DE, FR]`, `x-plan = pro`).
function condition(c) {
  const op = OPS[String(c.op || "").replace(/^OPERATOR_/, "")] || c.op;
  const values = c.values || [];
  if (!values.length) return `${c.attribute} ${op}`;
  return ["in", "not in"].includes(op) ? `${c.attribute} ${op} [${values.join(", ")}]`
    : `${c.attribute} ${op} ${values[0]}`;
}

function layerText(test) {
  if (!test.layer) return "";
  const r = test.range;
  return r ? `${test.layer}, [${num(r.start)}, ${num(r.end)}) of its hash space` : test.layer;
}

// A multi-armed bandit: P(arm is best), the estimated regret and the weights over time.
function bandit(resp, box) {
  const best = resp.probability_best || {};
  if (!Object.keys(best).length) {
    clear(box);
    return;
  }
  const history = resp.bandit_history || [];
  const arms = Object.keys(best);
  const chart = h("div");
  clear(box, section("Bandit",
    kv([...arms.map((a) => [`P(${a} is best)`, pct(best[a], 1)]),
      ["Expected regret", num(resp.expected_regret)]]), chart));
  timeChart(chart, history.map((w) => Date.parse(w.at) / 1000), arms.map((a) => ({
    label: `${a} weight`, values: history.map((w) => (w.weights || {})[a] ?? null),
    stepped: true })), { title: "Weights after each reweighting", height: 180 });
}

function duration(seconds) {
  const s = Math.round(Number(seconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function splitForm(test, reload) {
  const st = enumName(test.status, "TEST_STATUS_");
  if (!can(SVC, "UpdateSplit") || !["draft", "running", "paused"].includes(st)) return null;
  const inputs = (test.variants || []).map((v) => h("input", { type: "number", step: "0.01",
    min: 0, max: 1, value: v.weight, name: v.name, "aria-label": `weight of ${v.name}` }));
  const explicit = h("input", { type: "checkbox", name: "explicit" });
  const reason = h("input", { type: "text", name: "reason", placeholder: "reason" });
  const btn = actionButton("Change split", SVC, "UpdateSplit", () => ({
    test_id: test.test_id, explicit: explicit.checked, reason: reason.value,
    weights: Object.fromEntries(inputs.map((i) => [i.name, Number(i.value)])),
  }), reload);
  return h("div", { class: "split-form" },
    (test.variants || []).map((v, i) => h("label", {}, `${v.name} `, inputs[i])),
    h("label", {}, explicit, " allow units to switch arms"), reason, btn);
}

function lifecycle(test, reason, reload) {
  const st = enumName(test.status, "TEST_STATUS_");
  const body = () => ({ test_id: test.test_id, reason: reason.value });
  const buttons = [
    st === "draft" && actionButton("Start", SVC, "StartTest", body, reload, { kind: "primary" }),
    st === "running" && actionButton("Pause", SVC, "PauseTest", body, reload),
    st === "paused" && actionButton("Resume", SVC, "ResumeTest", body, reload),
    ["draft", "running", "paused"].includes(st)
      && actionButton("Stop", SVC, "StopTest", body, reload, { kind: "danger" }),
    ["running", "paused", "stopped"].includes(st) && actionButton("Conclude", SVC,
      "ConcludeTest", () => ({ test_id: test.test_id, reason: reason.value }), reload),
  ].filter(Boolean);
  return buttons.length ? h("div", { class: "actions" }, reason, ...buttons) : null;
}

export async function render(main, testId) {
  const head = h("div");
  const verdict = h("div");
  const variants = h("div");
  const lift = h("div");
  const over = h("div", { class: "series" });
  const pvals = h("div", { class: "series" });
  const cs = h("div", { class: "series" });
  const side = h("div");
  const banditBox = h("div");
  const actions = h("div");
  const reason = h("input", { type: "text", name: "reason", placeholder: "reason (audited)" });
  clear(main, head, actions, verdict, banditBox,
    section("Variants", variants),
    h("div", { class: "columns" }, section("Lift (relative, with confidence interval)", lift),
      side),
    section("Over time", over, pvals, cs));
  let drawnActionsFor = "";
  const refresh = async () => {
    const test = await rpc(SVC, "GetTest", { test_id: testId });
    const resp = await rpc(SVC, "AnalyzeTest", { test_id: testId });
    const a = JSON.parse(resp.analysis_json || "{}");
    const st = enumName(test.status, "TEST_STATUS_");
    const rule = enumName(test.settings && test.settings.decision_rule, "DECISION_RULE_")
      || "fixed_horizon";
    clear(head, h("h1", {}, `Experiment ${test.name} `, badge(st)),
      kv([["Model", test.model_name], ["Id", test.test_id], ["Decision rule", rule],
        ["Strategy", enumName(test.strategy, "TRAFFIC_SPLIT_STRATEGY_").replace(/_/g, " ")],
        ["Layer", layerText(test)],
        ["Targeting", (test.targeting || []).map(condition).join(" and ")],
        ["Started", when(test.started_at)], ["Created by", test.created_by],
        ["Conclusion", test.conclusion]]));
    if (drawnActionsFor !== st) { // keep a reason being typed unless the state changed
      drawnActionsFor = st;
      const reload = () => refresh().catch((err) => flash(describe(err)));
      clear(actions, lifecycle(test, reason, reload), splitForm(test, reload));
    }
    clear(verdict, section("Recommendation", recommendation(a, resp), ...alarms(a)));
    clear(variants, variantsTable(a, test));
    clear(lift, intervalChart(liftRows(a), { unit: "%", title: "treatment vs control" }));
    clear(side, section("Bayesian", bayes(a)), section("Power and time to go", power(a)));
    bandit(resp, banditBox);
    await drawSeries(test, over, pvals, cs, (a.analysis_unit || {}).unit === "unit");
  };
  await refresh();
  return { topics: ["experiments"], refresh };
}

async function drawSeries(test, over, pvals, cs, byUnit) {
  const series = await experimentSeries(test);
  const names = (test.variants || []).map((v) => v.name);
  timeChart(over, series.x, names.map((n) => ({ label: `${n} success rate`,
    values: series.rate[n] })), { title: "Cumulative success rate" });
  const alpha = 1 - ((test.settings && test.settings.confidence_level) || 0.95);
  const seq = (test.settings && test.settings.decision_rule) === "DECISION_RULE_SEQUENTIAL";
  const alphaLine = { label: `α = ${num(alpha)}`, values: series.x.map(() => alpha),
    scale: "p", dash: [6, 4], color: "#6b7280" };
  if (!seq || byUnit) {
    // By unit, AnalyzeTest's sequential test counts units; the windows count requests,
    // so the series has no valid sequential look to draw.
    clear(cs, seq ? h("p", { class: "muted", id: "sequential-by-unit" },
      "This test is analysed by unit: its always-valid p-value is the recommendation's. "
      + "The windows count requests, so no sequential curve is drawn over time; the curve "
      + "above counts requests as independent.") : null);
    timeChart(pvals, series.x, [
      ...Object.entries(series.p).map(([n, values]) => ({ label: `p-value ${n} vs control`,
        values, scale: "p" })), alphaLine,
    ], { title: "Cumulative p-value over time (fixed-horizon z-test, by request)" });
    return;
  }
  // A sequential test is decided by its always-valid p-value: plot that against α (the
  // fixed-horizon curve, which may not be peeked at, dashed for reference).
  timeChart(pvals, series.x, [
    ...Object.entries(series.seqP).map(([n, values]) => ({
      label: `always-valid p-value ${n} vs control (mSPRT)`, values, scale: "p" })),
    ...Object.entries(series.p).map(([n, values]) => ({
      label: `fixed-horizon p-value ${n} (not valid under peeking)`, values, scale: "p",
      dash: [2, 3] })),
    alphaLine,
  ], { title: "Always-valid p-value over time (sequential test)" });
  timeChart(cs, series.x, [
    ...Object.keys(series.low).flatMap((n) => [
      { label: `${n} − control: lower bound`, values: series.low[n] },
      { label: `${n} − control: upper bound`, values: series.high[n] }]),
    { label: "no difference", values: series.x.map(() => 0), dash: [6, 4], color: "#6b7280" },
  ], { title: `Confidence sequence of the success-rate difference (${num(100 * (1 - alpha))}%)` });
}
