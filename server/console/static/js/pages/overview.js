// Overview: models with their PRODUCTION/STAGING versions, running tests with their
// verdict, active rollouts and shadows, connected sidecars, pending approvals for me.
import { rpc, session } from "../api.js";
import { badge, clear, enumName, h, hashHref, link, num, pct, section, table, when }
  from "../dom.js";
import { pager } from "../ui.js";
import { sidecarsSection } from "./sidecars.js";

const PAGE = 20;

function versionsAt(model, stage) {
  return (model.latest_versions || []).filter((v) => v.stage === stage)
    .map((v) => v.version).join(", ");
}

function modelsList() {
  return pager(async (token) => {
    const r = await rpc("RegistryService", "ListModels", { page_size: PAGE, page_token: token });
    return { rows: r.models || [], next: r.next_page_token };
  }, (rows) => table([
    { label: "Model", get: (m) => link(hashHref("models", m.name), m.name), sort: (m) => m.name },
    { label: "Production", get: (m) => versionsAt(m, "MODEL_STAGE_PRODUCTION") || "–" },
    { label: "Staging", get: (m) => versionsAt(m, "MODEL_STAGE_STAGING") || "–" },
    { label: "Versions", get: (m) => num(m.version_count),
      sort: (m) => Number(m.version_count || 0) },
    { label: "Aliases", get: (m) => Object.entries(m.aliases || {})
      .map(([a, v]) => `@${a}→${v}`).join(" ") },
    { label: "Updated", get: (m) => when(m.updated_at), sort: (m) => m.updated_at },
  ], rows, { empty: "No models registered yet.", id: "models" }), { id: "models" });
}

export function verdictOf(analysis) {
  const rec = enumName(analysis.recommendation, "RECOMMENDATION_") || "keep_running";
  return badge(rec.replace(/_/g, " "), rec);
}

async function withVerdicts(tests) {
  return Promise.all(tests.map(async (t) => {
    try {
      return { ...t, analysis: await rpc("ExperimentService", "AnalyzeTest",
        { test_id: t.test_id }) };
    } catch {
      return { ...t, analysis: null };
    }
  }));
}

function testsList() {
  return pager(async (token) => {
    const r = await rpc("ExperimentService", "ListTests",
      { status: "TEST_STATUS_RUNNING", page_size: PAGE, page_token: token });
    return { rows: await withVerdicts(r.tests || []), next: r.next_page_token };
  }, (rows) => table([
    { label: "Test", get: (t) => link(hashHref("experiments", t.test_id), t.name) },
    { label: "Model", get: (t) => t.model_name },
    { label: "Split", get: (t) => (t.variants || [])
      .map((v) => `${v.name} ${pct(v.weight, 0)}`).join(" / ") },
    { label: "p-value", get: (t) => (t.analysis ? num(t.analysis.p_value) : "–") },
    { label: "Verdict", get: (t) => (t.analysis ? verdictOf(t.analysis) : "–") },
  ], rows, { empty: "No test is running.", id: "tests" }), { id: "tests" });
}

export function stepText(d) {
  const steps = (d.plan && d.plan.steps) || [];
  return steps.length ? `${(d.step_index || 0) + 1} of ${steps.length}` : "–";
}

function rolloutsList() {
  return pager(async (token) => {
    const r = await rpc("DeploymentService", "ListDeployments",
      { active_only: true, page_size: PAGE, page_token: token });
    return { rows: r.deployments || [], next: r.next_page_token };
  }, (rows) => table([
    { label: "Rollout", get: (d) => link(hashHref("rollouts", d.deployment_id),
      `${d.model_name} ${d.stable_version || "?"} → ${d.model_version}`) },
    { label: "Strategy", get: (d) => enumName(d.strategy, "DEPLOYMENT_STRATEGY_") },
    { label: "Status", get: (d) => badge(enumName(d.status, "DEPLOYMENT_STATUS_")) },
    { label: "Step", get: stepText },
    { label: "Live split", get: (d) => {
      const p = Number(d.traffic_percentage || 0);
      return `stable ${num(100 - p)}% / new ${num(p)}%`;
    } },
    { label: "Updated", get: (d) => when(d.updated_at) },
  ], rows, { empty: "No rollout in progress.", id: "rollouts" }), { id: "rollouts" });
}

function shadowsList() {
  return pager(async (token) => {
    const r = await rpc("DeploymentService", "ListShadows",
      { active_only: true, page_size: PAGE, page_token: token });
    return { rows: r.shadows || [], next: r.next_page_token };
  }, (rows) => table([
    { label: "Shadow", get: (s) => link(hashHref("shadows", s.shadow_id),
      `${s.primary_model} ⇢ ${s.shadow_model}`) },
    { label: "Mirrored", get: (s) => `${num(s.traffic_percentage)}%` },
    { label: "Since", get: (s) => when(s.created_at) },
  ], rows, { empty: "No shadow is running.", id: "shadows" }), { id: "shadows" });
}

function approvalsList() {
  const me = session().subject;
  return pager(async (token) => {
    const r = await rpc("RegistryService", "ListPendingApprovals",
      { reviewer: me, page_size: PAGE, page_token: token });
    return { rows: r.requests || [], next: r.next_page_token };
  }, (rows) => table([
    { label: "Model", get: (p) => link(hashHref("models", p.name), `${p.name} ${p.version}`) },
    { label: "To", get: (p) => badge(enumName(p.target_stage, "MODEL_STAGE_")) },
    { label: "Requested by", get: (p) => p.requested_by },
    { label: "Why", get: (p) => p.justification || "–" },
    { label: "Since", get: (p) => when(p.created_at) },
  ], rows, { empty: "Nothing waits for you.", id: "approvals" }), { id: "approvals" });
}

export async function render(main) {
  const parts = {
    approvals: approvalsList(), models: modelsList(), tests: testsList(),
    rollouts: rolloutsList(), shadows: shadowsList(), sidecars: sidecarsSection(),
  };
  clear(main,
    h("h1", {}, "Overview"),
    h("div", { class: "columns" },
      section("Pending approvals for me", parts.approvals),
      section("Running tests", parts.tests)),
    section("Models", parts.models),
    h("div", { class: "columns" },
      section("Active rollouts", parts.rollouts),
      section("Shadows", parts.shadows)),
    section("Connected sidecars", parts.sidecars));
  const refresh = () => Promise.all(Object.values(parts).map((p) => p.reload()));
  await refresh();
  return { topics: ["registry", "experiments", "deployments", "routes"], refresh };
}
