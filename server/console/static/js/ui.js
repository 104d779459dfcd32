// Shared page pieces: flash messages, action buttons bound to RPCs, server-side paging.
import { ApiError, can, rpc } from "./api.js";
import { clear, h } from "./dom.js";

export function flash(message, kind = "error") {
  const el = document.getElementById("flash");
  clear(el, message);
  el.dataset.kind = kind;
  el.hidden = !message;
}

export function describe(err) {
  if (err instanceof ApiError) {
    const field = err.field ? ` (field: ${err.field})` : "";
    return `${err.message}${field} [HTTP ${err.status}]`;
  }
  return String(err && err.message ? err.message : err);
}

// A button that calls service/method with body() and then done(result); absent when the
// session may not call it (the server refuses it anyway).
export function actionButton(label, service, method, body, done, { kind = "", confirm } = {}) {
  if (!can(service, method)) return null;
  const btn = h("button", { type: "button", class: `action ${kind}`.trim(),
    dataset: { action: method } });
  btn.textContent = label;
  btn.addEventListener("click", async () => {
    if (confirm && !window.confirm(confirm)) return;
    btn.disabled = true;
    try {
      const result = await rpc(service, method, body());
      flash(`${label}: done`, "ok");
      if (done) await done(result);
    } catch (err) {
      flash(`${label}: ${describe(err)}`);
    } finally {
      btn.disabled = false;
    }
  });
  return btn;
}

// Server-side pages: load(token) -> {rows, next}; draw(rows) -> node. Keeps the tokens
// of the pages seen so "Previous" goes back without the server keeping state.
export function pager(load, draw, { id } = {}) {
  const box = h("div", { class: "paged", dataset: id ? { pager: id } : {} });
  const tokens = [""];
  let index = 0;
  const show = async () => {
    const { rows, next } = await load(tokens[index]);
    const prev = h("button", { type: "button", class: "page-prev", disabled: index === 0,
      onclick: () => { index -= 1; box.reload({ force: true }); } }, "‹ Previous");
    const more = h("button", { type: "button", class: "page-next", disabled: !next,
      onclick: () => { tokens[index + 1] = next; index += 1; box.reload({ force: true }); } },
    "Next ›");
    clear(box, draw(rows), (index > 0 || next)
      ? h("div", { class: "pages" }, prev, h("span", { class: "muted" }, `page ${index + 1}`), more)
      : null);
  };
  // A live refresh waits while someone types in the box (a comment, a reason): the
  // next change notice or poll redraws it.
  box.reload = ({ force = false } = {}) => {
    const typing = box.contains(document.activeElement)
      && ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
    if (typing && !force) return Promise.resolve();
    return show().catch((err) => flash(describe(err)));
  };
  box.restart = () => { // new filters: back to the first page
    tokens.length = 1;
    index = 0;
    return box.reload({ force: true });
  };
  return box;
}
