// Connected sidecars with their last report and the routing-table version they hold.
import { ApiError, rpc } from "../api.js";
import { h, num, table, when } from "../dom.js";
import { pager } from "../ui.js";

export function sidecarsSection() {
  return pager(async (token) => {
    try {
      const r = await rpc("RoutingService", "ListSidecars", { page_size: 20, page_token: token });
      return { rows: r.sidecars || [], next: r.next_page_token };
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return { rows: null, next: "" };
      throw err;
    }
  }, (rows) => (rows === null
    ? h("p", { class: "muted" }, "This control plane does not list its sidecars.")
    : table([
      { label: "Sidecar", get: (s) => s.sidecar_id || s.id },
      { label: "Address", get: (s) => s.address || s.peer || "–" },
      { label: "Last report", get: (s) => when(s.last_report_at || s.last_report) },
      { label: "Routing table", get: (s) => `v${num(s.routing_table_version ?? s.table_version)}` },
    ], rows, { empty: "No sidecar connected.", id: "sidecars" })), { id: "sidecars" });
}
