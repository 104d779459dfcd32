// Charts: time series with uPlot (bundled from npm, see console/), and two small SVG
// charts drawn here (an estimate with its confidence interval; a histogram).
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { clear, h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// A time series chart. x: seconds since the epoch; series: [{label, values, color,
// dash, scale}] (scale "p" draws on a 0..1 right axis, e.g. p-values).
export function timeChart(container, x, series, { height = 220, title = "" } = {}) {
  const box = h("div", { class: "chart", dataset: { chart: title || "series" } });
  clear(container, title ? h("h3", {}, title) : null, box);
  if (!x.length) {
    box.append(h("p", { class: "muted" }, "No data yet."));
    return null;
  }
  const hasP = series.some((se) => se.scale === "p");
  const opts = {
    width: Math.max(container.clientWidth || 0, 320) - 8,
    height,
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: x.length === 1 ? { time: true, range: [x[0] - 60, x[0] + 60] } : { time: true },
      ...(hasP ? { p: { range: [0, 1] } } : {}),
    },
    axes: [{}, { size: 60 }, ...(hasP ? [{ scale: "p", side: 1, grid: { show: false } }] : [])],
    series: [{}, ...series.map((se, i) => ({
      label: se.label, scale: se.scale || "y", width: 2,
      stroke: se.color || COLORS[i % COLORS.length], dash: se.dash,
      points: { show: !se.dash && x.length < 40, size: 6 },
      ...(se.stepped ? { paths: uPlot.paths.stepped({ align: 1 }) } : {}),
      spanGaps: true,
    }))],
  };
  const data = [x, ...series.map((se) => se.values.map((v) => (v === undefined ? null : v)))];
  return new uPlot(opts, data, box);
}

// Estimates with their confidence intervals on one axis (a forest plot): rows =
// [{label, estimate, low, high, significant}], values in the unit given (e.g. "%").
export function intervalChart(rows, { unit = "%", title = "" } = {}) {
  const width = 560;
  const rowH = 34;
  const left = 120;
  const right = 20;
  const height = rows.length * rowH + 36;
  const finite = (v) => typeof v === "number" && Number.isFinite(v);
  const values = rows.flatMap((r) => [r.low, r.high, r.estimate]).filter(finite);
  let lo = Math.min(0, ...values);
  let hi = Math.max(0, ...values);
  if (lo === hi) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.08;
  lo -= pad; hi += pad;
  const X = (v) => left + ((v - lo) / (hi - lo)) * (width - left - right);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "interval-chart",
    role: "img", "aria-label": title || "confidence intervals" });
  svg.append(s("line", { x1: X(0), x2: X(0), y1: 4, y2: height - 28, class: "zero" }));
  rows.forEach((r, i) => {
    const y = 20 + i * rowH;
    svg.append(s("text", { x: 4, y: y + 4, class: "label" }, r.label));
    if (finite(r.low) && finite(r.high)) {
      svg.append(s("line", { x1: X(r.low), x2: X(r.high), y1: y, y2: y,
        class: r.significant ? "ci significant" : "ci" }));
      for (const v of [r.low, r.high]) {
        svg.append(s("line", { x1: X(v), x2: X(v), y1: y - 6, y2: y + 6, class: "ci-end" }));
      }
    }
    if (finite(r.estimate)) {
      svg.append(s("circle", { cx: X(r.estimate), cy: y, r: 5,
        class: r.significant ? "estimate significant" : "estimate" }));
    }
  });
  const ticks = 5;
  for (let t = 0; t <= ticks; t += 1) {
    const v = lo + ((hi - lo) * t) / ticks;
    svg.append(s("text", { x: X(v), y: height - 8, class: "tick" },
      `${Number(v.toPrecision(2))}${unit}`));
  }
  return h("figure", { class: "chart", dataset: { chart: "lift" } },
    title ? h("figcaption", {}, title) : null, svg);
}

// A histogram of one or two samples on shared bins: groups = [{label, counts}], edges =
// bin edges (counts.length + 1); bars side by side.
export function histogram(edges, groups, { unit = "ms", title = "" } = {}) {
  const width = 560;
  const height = 200;
  const left = 40;
  const bottom = 30;
  const bins = Math.max(edges.length - 1, 1);
  const max = Math.max(1, ...groups.flatMap((g) => g.counts));
  const bw = (width - left - 10) / bins;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "histogram",
    role: "img", "aria-label": title || "histogram" });
  groups.forEach((g, gi) => {
    g.counts.forEach((c, i) => {
      const barH = ((height - bottom - 10) * c) / max;
      svg.append(s("rect", { x: left + i * bw + (gi * bw) / groups.length + 1,
        y: height - bottom - barH, width: Math.max(bw / groups.length - 2, 1), height: barH,
        class: `bar series-${gi}` }, s("title", {}, `${g.label}: ${c}`)));
    });
  });
  const step = Math.ceil(bins / 6);
  for (let i = 0; i <= bins; i += step) {
    svg.append(s("text", { x: left + i * bw, y: height - 10, class: "tick" },
      `${Number(Number(edges[i]).toPrecision(3))}${unit}`));
  }
  const legend = h("p", { class: "legend" }, groups.map((g, gi) =>
    h("span", { class: `key series-${gi}` }, g.label)));
  return h("figure", { class: "chart", dataset: { chart: "histogram" } },
    title ? h("figcaption", {}, title) : null, svg, legend);
}
