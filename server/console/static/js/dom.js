// DOM helpers: elements are built with h(), never from HTML strings, so server data is
// always text (no injection), and no inline style is needed (the CSP forbids it).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Enum names without their prefix, lower case: MODEL_STAGE_PRODUCTION -> production.
export function enumName(value, prefix) {
  if (!value) return "";
  const s = String(value);
  return (prefix && s.startsWith(prefix) ? s.slice(prefix.length) : s).toLowerCase();
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind || text}`.trim() }, text);
}

export function num(value, digits = 4) {
  if (value === undefined || value === null || value === "") return "–";
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  if (Number.isInteger(n)) return n.toLocaleString("en");
  return Math.abs(n) >= 1000 ? n.toFixed(0) : Number(n.toPrecision(digits)).toString();
}

export function pct(value, digits = 2) {
  if (value === undefined || value === null) return "–";
  return `${(Number(value) * 100).toFixed(digits)}%`;
}

export function ms(seconds) {
  if (seconds === undefined || seconds === null) return "–";
  return `${(Number(seconds) * 1000).toFixed(1)} ms`;
}

export function when(ts) {
  if (!ts) return "–";
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  return d.toISOString().slice(0, 10) + "\u00a0" + d.toISOString().slice(11, 19); // no wrap
}

export function section(title, ...body) {
  return h("section", { class: "card" }, h("h2", {}, title), ...body);
}

export function kv(pairs) {
  return h("dl", { class: "kv" },
    pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
      .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// A table whose columns may be sortable: cols = [{label, get(row) -> node|text,
// sort(row) -> comparable}] sorts the rows shown; a column with `order` (the server's
// order_by key, e.g. "metrics.accuracy") instead asks the server for the whole list in
// that order: serverOrder = {current: "metrics.accuracy desc", set(orderBy)}.
export function table(cols, rows, { empty = "Nothing here.", id, serverOrder } = {}) {
  if (!rows.length) return h("p", { class: "muted", dataset: id ? { table: id } : {} }, empty);
  const body = h("tbody");
  let order = { col: -1, dir: 1 };
  const draw = () => {
    const sorted = [...rows];
    if (order.col >= 0) {
      const key = cols[order.col].sort;
      sorted.sort((a, b) => compare(key(a), key(b)) * order.dir);
    }
    clear(body, sorted.map((row) => h("tr", {}, cols.map((c) => h("td", {}, c.get(row))))));
  };
  const head = h("tr", {}, cols.map((c, i) => (c.order && serverOrder)
    ? orderedHeader(c, serverOrder)
    : c.sort ? h("th", {}, h("button", { type: "button", class: "sort", onclick: () => {
      order = { col: i, dir: order.col === i ? -order.dir : -1 };
      draw();
    } }, c.label))
    : h("th", {}, c.label)));
  draw();
  return h("table", { class: "grid", dataset: id ? { table: id } : {} }, h("thead", {}, head), body);
}

function orderedHeader(c, serverOrder) {
  const [key, dir] = (serverOrder.current || "").split(" ");
  const on = key === c.order;
  const next = on && dir === "desc" ? "asc" : "desc";
  return h("th", { "aria-sort": on ? (dir === "desc" ? "descending" : "ascending") : "none" },
    h("button", { type: "button", class: "sort", dataset: { order: c.order },
      onclick: () => serverOrder.set(`${c.order} ${next}`) },
    c.label, on ? (dir === "desc" ? " ▼" : " ▲") : ""));
}

function compare(a, b) {
  const missing = (v) => v === undefined || v === null || v === "";
  if (missing(a)) return missing(b) ? 0 : 1;
  if (missing(b)) return -1;
  return typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(b);
}

export function link(href, text) {
  return h("a", { href }, text);
}

export function hashHref(...parts) {
  return "#/" + parts.map((p) => encodeURIComponent(p)).join("/");
}
