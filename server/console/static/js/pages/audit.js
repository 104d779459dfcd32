// Audit: filter events by time, type, user and resource; chain and checkpoint status; a
// compliance report rendered; the export download (with its seal).
import { can, rpc } from "../api.js";
import { badge, clear, enumName, h, kv, num, section, table, when } from "../dom.js";
import { actionButton, describe, flash, pager } from "../ui.js";

const SVC = "AuditService";
const TYPES = [
  "MODEL_REGISTERED", "MODEL_UPDATED", "MODEL_DELETED", "MODEL_STAGE_CHANGED",
  "MODEL_ALIAS_MOVED", "PROMOTION_REQUESTED", "PROMOTION_APPROVED", "PROMOTION_REJECTED",
  "PROMOTION_CANCELLED", "APPROVAL_GRANTED", "MODEL_DEPLOYED", "DEPLOYMENT_CREATED",
  "DEPLOYMENT_ADVANCED", "DEPLOYMENT_PROMOTED", "DEPLOYMENT_ROLLED_BACK", "DEPLOYMENT_PAUSED",
  "DEPLOYMENT_RESUMED", "DEPLOYMENT_ABORTED", "SHADOW_STARTED", "SHADOW_STOPPED",
  "AB_TEST_CREATED", "AB_TEST_STARTED", "AB_TEST_PAUSED", "AB_TEST_RESUMED", "AB_TEST_UPDATED",
  "AB_TEST_STOPPED", "AB_TEST_CONCLUDED", "SECURITY_VIOLATION", "CONFIGURATION_CHANGED",
  "AUDIT_EXPORTED", "AUDIT_PURGED", "COMPLIANCE_REPORT_GENERATED", "ACCESS_DENIED", "CUSTOM",
];

function filterForm(apply) {
  const f = {
    start: h("input", { type: "datetime-local", name: "start", step: 1 }),
    end: h("input", { type: "datetime-local", name: "end", step: 1 }),
    type: h("select", { name: "type" }, h("option", { value: "" }, "any type"),
      TYPES.map((t) => h("option", { value: t }, t.toLowerCase()))),
    user: h("input", { type: "text", name: "user", placeholder: "user" }),
    resourceType: h("input", { type: "text", name: "resource_type",
      placeholder: "resource type" }),
    resourceId: h("input", { type: "text", name: "resource_id", placeholder: "resource id" }),
    text: h("input", { type: "text", name: "text", placeholder: "text in details" }),
  };
  const form = h("form", { class: "filters", id: "audit-filters" },
    Object.values(f), h("button", { type: "submit", class: "primary" }, "Filter"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    apply();
  });
  return { form, f };
}

const iso = (local) => (local ? new Date(local).toISOString() : undefined);

function query(f) {
  const q = {};
  if (f.type.value) q.event_types = [`EVENT_TYPE_${f.type.value}`];
  if (f.user.value.trim()) q.user = f.user.value.trim();
  if (f.resourceType.value.trim()) q.resource_type = f.resourceType.value.trim();
  if (f.resourceId.value.trim()) q.resource_id = f.resourceId.value.trim();
  if (f.text.value.trim()) q.text = f.text.value.trim();
  if (f.start.value) q.start_time = iso(f.start.value);
  if (f.end.value) q.end_time = iso(f.end.value);
  return q;
}

// QueryEvents streams chunks over gRPC; the console answers with them joined.
function joined(r) {
  const chunks = Array.isArray(r) ? r : r.chunks || [r];
  return { rows: chunks.flatMap((c) => c.events || []),
    next: chunks.map((c) => c.next_page_token).filter(Boolean).pop() || "" };
}

function eventsTable(rows) {
  return table([
    { label: "#", get: (e) => e.seq, sort: (e) => Number(e.seq) },
    { label: "Time", get: (e) => when(e.time), sort: (e) => e.time },
    { label: "Type", get: (e) => enumName(e.event_type, "EVENT_TYPE_") },
    { label: "Severity", get: (e) => badge(enumName(e.severity, "SEVERITY_")) },
    { label: "User", get: (e) => e.actor },
    { label: "Resource", get: (e) => `${e.resource_type || ""} ${e.resource_id || ""}` },
    { label: "Action", get: (e) => e.action },
    { label: "Details", get: detailsCell },
  ], rows, { empty: "No event matches.", id: "events" });
}

function detailsCell(e) {
  const text = e.details_json || "{}";
  if (text.length <= 48) return h("code", {}, text);
  let pretty = text;
  try {
    pretty = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // shown as stored
  }
  return h("details", {}, h("summary", {}, h("code", {}, `${text.slice(0, 48)}…`)),
    h("pre", { class: "details" }, pretty));
}

// The export is the sealed trail of a period (the server signs what it sends), so only
// the filter's time range applies to it.
function downloadLinks(q) {
  const params = new URLSearchParams();
  if (q.start_time) params.set("start_time", q.start_time);
  if (q.end_time) params.set("end_time", q.end_time);
  const link = (format, part, text) => {
    const p = new URLSearchParams(params);
    p.set("format", format);
    if (part) p.set("part", part);
    return h("a", { class: "button", href: `/api/download/audit-export?${p}`,
      download: "", dataset: { download: part ? `${format}-${part}` : format } }, text);
  };
  return [link("jsonl", "", "Export JSON lines"), link("csv", "", "Export CSV"),
    link("jsonl", "seal", "Seal of the export"),
    h("span", { class: "muted" }, "exports cover the time range (every event type)")];
}

function chainStatus(v) {
  return h("div", { id: "chain-status" },
    badge(v.valid ? "chain valid" : "chain broken", v.valid ? "ok" : "alarm"),
    kv([["Events checked", num(v.events_checked)], ["Head", `#${v.last_seq} ${v.last_hash}`],
      ["Checkpoints checked", num(v.checkpoints_checked)],
      ["Signatures", enumName(v.signature_state, "SIGNATURE_STATE_").replace(/_/g, " ")],
      ["Signing key", v.key_id], ["First bad event", Number(v.first_bad_seq)
        ? `#${v.first_bad_seq} ${v.first_bad_event_id}: ${v.reason}` : ""],
      ["Notes", (v.notes || []).join("; ")]]));
}

function checkpoints() {
  return pager(async (token) => {
    const r = await rpc(SVC, "ListCheckpoints", { page_size: 10, page_token: token });
    return { rows: r.checkpoints || [], next: r.next_page_token };
  }, (rows) => table([
    { label: "Seq", get: (c) => c.seq },
    { label: "Kind", get: (c) => enumName(c.kind, "CHECKPOINT_KIND_") },
    { label: "Signed", get: (c) => when(c.created_at) },
    { label: "Key", get: (c) => c.key_id },
  ], rows, { empty: "No checkpoint yet." }), { id: "checkpoints" });
}

function renderReport(r) {
  const rep = JSON.parse(r.report_json || "{}");
  const counts = (o) => table([{ label: "", get: (x) => x[0] },
    { label: "events", get: (x) => num(x[1]), sort: (x) => x[1] }],
  Object.entries(o || {}).sort((a, b) => b[1] - a[1]), { empty: "none" });
  const list = (title, items) => h("div", {}, h("h4", {}, `${title} (${(items || []).length})`),
    (items || []).length ? h("ul", { class: "report-list" }, items.slice(0, 8).map((i) =>
      h("li", {}, reportLine(i))), items.length > 8 ? h("li", { class: "muted" },
      `… ${items.length - 8} more in the report's JSON`) : null)
      : h("p", { class: "muted" }, "none"));
  return h("div", { class: "report", id: "report" },
    h("h3", {}, `Report ${rep.report_id || r.report_id}`),
    kv([["Period", `${when(rep.start_date)} – ${when(rep.end_date)}`],
      ["Generated", `${when(rep.generated_at)} by ${rep.generated_by || "?"}`],
      ["Events", num(r.total_events)],
      ["Chain", r.chain_valid ? "valid" : "NOT valid"]]),
    h("div", { class: "columns" }, h("div", {}, h("h4", {}, "By type"), counts(rep.events_by_type)),
      h("div", {}, h("h4", {}, "By user"), counts(rep.events_by_user))),
    list("Unapproved production changes", rep.unapproved_production_changes),
    list("Unauthenticated changes", rep.unauthenticated_changes),
    list("Security violations", rep.security_violations),
    list("Approvals", rep.approvals), list("Rollbacks", rep.rollbacks));
}

// One line of a report's list entry (an event summary or an approval decision).
function reportLine(i) {
  const who = i.actor || i.user || "";
  const wait = i.seconds_to_decision === undefined || i.seconds_to_decision === null ? ""
    : `after ${Math.round(i.seconds_to_decision)} s`;
  return [i.seq ? `#${i.seq}` : "", when(i.time), i.decision || "",
    String(i.event_type || "").toLowerCase(), who, i.resource_id || "", wait,
    i.comment ? `“${i.comment}”` : ""].filter(Boolean).join("  ");
}

function reports(show) {
  const start = h("input", { type: "datetime-local", name: "report_start", step: 1 });
  const end = h("input", { type: "datetime-local", name: "report_end", step: 1 });
  const list = pager(async (token) => {
    const r = await rpc(SVC, "ListReports", { page_size: 10, page_token: token });
    return { rows: r.reports || [], next: r.next_page_token };
  }, (rows) => table([
    { label: "Report", get: (r) => h("button", { type: "button", class: "link", onclick: async () => {
      try {
        show(await rpc(SVC, "GetReport", { report_id: r.report_id }));
      } catch (err) {
        flash(describe(err));
      }
    } }, r.report_id) },
    { label: "Period", get: (r) => `${when(r.start_time)} – ${when(r.end_time)}` },
    { label: "By", get: (r) => r.generated_by },
  ], rows, { empty: "No report yet." }), { id: "reports" });
  const generate = actionButton("Generate report", SVC, "GenerateComplianceReport", () => ({
    start_time: iso(start.value) || new Date(Date.now() - 30 * 86400e3).toISOString(),
    end_time: iso(end.value) || new Date(Date.now() + 60e3).toISOString(),
  }), async (r) => {
    show(r);
    await list.reload();
  });
  return { node: h("div", {}, generate ? h("div", { class: "actions" }, "from ", start, " to ",
    end, generate) : null, list), list };
}

export async function render(main) {
  const results = h("div");
  const downloads = h("div", { class: "actions" });
  const chain = h("div");
  const reportBox = h("div");
  let events = null;
  const { form, f } = filterForm(() => {
    drawDownloads();
    events.restart();
  });
  const drawDownloads = () => clear(downloads, can(SVC, "ExportAuditTrail")
    ? downloadLinks(query(f)) : null);
  events = pager(async (token) => joined(await rpc(SVC, "QueryEvents",
    { ...query(f), page_size: 25, page_token: token })), eventsTable, { id: "events" });
  const cps = checkpoints();
  const rep = reports((r) => clear(reportBox, renderReport(r)));
  clear(main, h("h1", {}, "Audit trail"),
    section("Events", form, downloads, events),
    h("div", { class: "columns" }, section("Chain and checkpoints", chain, cps),
      section("Compliance reports", rep.node, reportBox)));
  drawDownloads();
  // Verifying reads the whole chain: on opening and on request, not on every change.
  const verify = async () => {
    if (!can(SVC, "VerifyChain")) return;
    const again = h("button", { type: "button", id: "verify-again", onclick: () =>
      verify().catch((err) => flash(describe(err))) }, "Verify again");
    clear(chain, chainStatus(await rpc(SVC, "VerifyChain", {})), again);
  };
  const refresh = () => Promise.all([events.reload(), cps.reload(), rep.list.reload()]);
  await Promise.all([refresh(), verify()]);
  return { topics: ["audit"], refresh };
}
