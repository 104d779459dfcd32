// Model: versions with their metrics (sorted by the server across pages), stage and alias
// history as a timeline, lineage, two versions side by side, and promotion requests.
import { rpc, session } from "../api.js";
import { badge, clear, enumName, h, kv, num, section, table, when } from "../dom.js";
import { actionButton, describe, flash, pager } from "../ui.js";

const REG = "RegistryService";
const stage = (s) => enumName(s, "MODEL_STAGE_");

function lineage(v) {
  const l = v.lineage || {};
  const sig = l.signature || {};
  const tensors = (ts) => (ts || []).map((t) =>
    `${t.name}: ${enumName(t.datatype, "TENSOR_DATATYPE_")}[${(t.shape || []).join(",")}]`)
    .join("; ");
  return kv([
    ["Training run", l.source_run_id], ["Run URI", l.source_uri],
    ["Code revision", l.code_revision], ["Parent version", l.parent_version],
    ["Training data", (l.training_data || []).map((d) =>
      h("div", {}, d.uri, d.digest ? h("code", {}, ` ${d.digest}`) : null))],
    ["Inputs", tensors(sig.inputs)], ["Outputs", tensors(sig.outputs)],
    ["Artifact", v.artifact ? `${v.artifact.uri} (${num(v.artifact.size_bytes)} bytes)` : ""],
    ["SHA-256", v.artifact && v.artifact.sha256 ? h("code", {}, v.artifact.sha256) : ""],
    ["Description", v.description],
  ]);
}

function versionsTable(rows, detail, picks, serverOrder) {
  const metricNames = [...new Set(rows.flatMap((v) => Object.keys(v.metrics || {})))].sort();
  return table([
    { label: "Version", get: (v) => h("button", { type: "button", class: "link",
      onclick: () => clear(detail, section(`Version ${v.version}: lineage`, lineage(v))) },
    v.version), order: "version" },
    { label: "Stage", get: (v) => badge(stage(v.stage)) }, // no server order by stage
    ...metricNames.map((m) => ({ label: m, get: (v) => num((v.metrics || {})[m]),
      order: `metrics.${m}` })),
    { label: "Aliases", get: (v) => (v.aliases || []).map((a) => `@${a}`).join(" ") },
    { label: "Tags", get: (v) => (v.tags || []).join(", ") },
    { label: "By", get: (v) => v.created_by },
    { label: "Registered", get: (v) => when(v.created_at), order: "created" },
    { label: "Compare", get: (v) => h("input", { type: "checkbox", "aria-label":
      `compare ${v.version}`, checked: picks.has(v.version),
      onchange: (ev) => picks.set(v.version, ev.target.checked) }) },
  ], rows, { empty: "No version.", id: "versions", serverOrder });
}

function timeline(entries) {
  if (!entries.length) return h("p", { class: "muted" }, "No stage or alias change yet.");
  return h("ol", { class: "timeline", id: "timeline" }, entries.map((e) => {
    const what = e.kind === "HISTORY_KIND_ALIAS"
      ? `@${e.alias}: ${e.from_version || "(new)"} → ${e.to_version || "(deleted)"}`
      : `${e.version}: ${stage(e.from_stage) || "–"} → ${stage(e.to_stage)}`;
    return h("li", {}, h("time", {}, when(e.at)), " ", h("strong", {}, what),
      ` by ${e.actor || "?"}`, e.reason ? h("span", { class: "muted" }, ` — ${e.reason}`) : null);
  }));
}

function comparison(r) {
  const metrics = Object.entries(r.metrics_comparison || {});
  const params = Object.entries(r.params_diff || {});
  return h("div", { id: "comparison" },
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, r.version1),
        h("th", {}, r.version2), h("th", {}, "change"))),
      h("tbody", {},
        h("tr", {}, h("td", {}, "stage"), h("td", {}, stage(r.stage && r.stage.version1)),
          h("td", {}, stage(r.stage && r.stage.version2)), h("td", {}, "")),
        h("tr", {}, h("td", {}, "framework"), h("td", {}, r.framework && r.framework.version1),
          h("td", {}, r.framework && r.framework.version2), h("td", {}, "")),
        metrics.map(([m, c]) => h("tr", {}, h("td", {}, m), h("td", {}, num(c.version1)),
          h("td", {}, num(c.version2)), h("td", {},
            c.difference === undefined ? "–" : `${c.difference > 0 ? "+" : ""}${num(c.difference)}`
            + (c.relative_change === undefined ? "" : ` (${(c.relative_change * 100).toFixed(1)}%)`)))),
        params.map(([p, c]) => h("tr", {}, h("td", {}, `param ${p}`), h("td", {}, c.version1),
          h("td", {}, c.version2), h("td", {}, "changed"))),
        h("tr", {}, h("td", {}, "size"), h("td", {}, num(r.size_bytes_version1)),
          h("td", {}, num(r.size_bytes_version2)), h("td", {}, "")))),
    h("p", {}, "Lineage differs in: ", (r.lineage_changed || []).join(", ") || "nothing"));
}

function mayReview(p) {
  const me = session().subject;
  return !(p.reviewers || []).length || (p.reviewers || []).includes(me);
}

function promotions(name, reload) {
  return pager(async (token) => {
    const r = await rpc(REG, "ListPendingApprovals", { name, page_size: 20, page_token: token });
    return { rows: r.requests || [], next: r.next_page_token };
  }, (rows) => (rows.length ? h("div", {}, rows.map((p) => {
    const comment = h("input", { type: "text", name: "comment", placeholder: "comment" });
    const body = (who) => () => ({ name: p.name, version: p.version, request_id: p.request_id,
      [who]: session().subject, comment: comment.value });
    const buttons = mayReview(p) ? [
      actionButton("Approve", REG, "ApprovePromotion", body("approver"), reload,
        { kind: "primary" }),
      actionButton("Reject", REG, "RejectPromotion", body("rejector"), reload,
        { kind: "danger" }),
    ].filter(Boolean) : [];
    return h("div", { class: "promotion", dataset: { request: p.request_id } },
      h("p", {}, h("strong", {}, `${p.version} → ${stage(p.target_stage)}`),
        ` requested by ${p.requested_by} ${when(p.created_at)}`),
      kv([["Why", p.justification], ["Reviewers", (p.reviewers || []).join(", ") || "anyone"],
        ["Approvals", `${(p.approvals || []).length} of ${p.required_approvals || 1}`],
        ["Comments", (p.approvals || []).map((a) => `${a.approver}: ${a.comment}`).join("; ")]]),
      buttons.length ? h("div", { class: "actions" }, comment, ...buttons) : null);
  })) : h("p", { class: "muted", id: "no-promotions" }, "No pending promotion request.")),
  { id: "promotions" });
}

export async function render(main, name) {
  const detail = h("div");
  const compareBox = h("div");
  const picked = new Set();
  const picks = { has: (v) => picked.has(v), set: (v, on) => (on ? picked.add(v) : picked.delete(v)) };
  // Sorting is the server's (order_by, across every page); a new order starts at page 1.
  const serverOrder = { current: "", set: (orderBy) => {
    serverOrder.current = orderBy;
    versions.restart();
  } };
  const versions = pager(async (token) => {
    const r = await rpc(REG, "ListVersions", { name, page_size: 50, page_token: token,
      order_by: serverOrder.current });
    return { rows: r.versions || [], next: r.next_page_token };
  }, (rows) => versionsTable(rows, detail, picks, serverOrder), { id: "versions" });
  const history = pager(async (token) => {
    const r = await rpc(REG, "GetHistory", { name, page_size: 100, page_token: token });
    return { rows: r.entries || [], next: r.next_page_token };
  }, timeline, { id: "history" });
  const compareBtn = h("button", { type: "button", onclick: async () => {
    const [v1, v2] = [...picked];
    if (!v1 || !v2 || picked.size !== 2) {
      flash("Tick exactly two versions to compare.");
      return;
    }
    try {
      clear(compareBox, comparison(await rpc(REG, "CompareModels",
        { name, version1: v1, version2: v2 })));
    } catch (err) {
      flash(describe(err));
    }
  } }, "Compare the two ticked versions");
  const refresh = async () => {
    await Promise.all([versions.reload(), history.reload(), pending.reload()]);
  };
  const pending = promotions(name, refresh);
  clear(main, h("h1", {}, `Model ${name}`),
    section("Promotion requests", pending),
    section("Versions", versions, compareBtn, compareBox, detail),
    section("Stage and alias history", history));
  await refresh();
  return { topics: ["registry"], refresh };
}
