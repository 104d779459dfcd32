// Connected sidecars with their last report and the routing-table version they hold.
import { ApiError, rpc } from "../api.js";
import { badge, h, num, table, when } from "../dom.js";
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
      { label: "Sidecar", get: (s) => s.sidecar_id },
      { label: "Connected", get: (s) => (s.connected
        ? badge("connected", "ok") : badge("not here", "muted")) },
      { label: "Address", get: (s) => s.address || "–" },
      { label: "Since", get: (s) => usTime(s.connected_us) },
      { label: "Last report", get: (s) => usTime(s.last_report_us) },
      { label: "Routing table", get: (s) => (Number(s.table_version)
        ? `v${num(s.table_version)}` : "–") },
    ], rows, { empty: "No sidecar connected.", id: "sidecars" })), { id: "sidecars" });
}

function usTime(us) {
  const n = Number(us || 0);
  return n ? when(new Date(n / 1000).toISOString()) : "–";
}
