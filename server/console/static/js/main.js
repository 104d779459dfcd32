// Entry point: the session decides between the login screen and the pages; hash routes
// pick the page (#/, #/models/<name>, #/experiments/<id>, #/rollouts/<id>,
// #/shadows/<id>, #/audit).
import { can, loadSession, logout, session } from "./api.js";
import { clear, h } from "./dom.js";
import { connect, disconnect, watch } from "./live.js";
import { describe, flash } from "./ui.js";
import * as audit from "./pages/audit.js";
import * as experiment from "./pages/experiment.js";
import * as loginPage from "./pages/login.js";
import * as model from "./pages/model.js";
import * as overview from "./pages/overview.js";
import * as rollout from "./pages/rollout.js";
import * as shadow from "./pages/shadow.js";

const ROUTES = [
  [/^\/?$/, overview, "overview"],
  [/^\/models\/([^/]+)$/, model, "overview"],
  [/^\/experiments\/([^/]+)$/, experiment, "overview"],
  [/^\/rollouts\/([^/]+)$/, rollout, "overview"],
  [/^\/shadows\/([^/]+)$/, shadow, "overview"],
  [/^\/audit$/, audit, "audit"],
];

const main = () => document.getElementById("main");
let generation = 0;

function header() {
  const s = session();
  const signedIn = Boolean(s && s.authenticated);
  document.getElementById("nav").hidden = !signedIn;
  document.querySelector("[data-nav=audit]").hidden = !can("AuditService", "QueryEvents");
  document.getElementById("logout").hidden = !signedIn;
  const roles = signedIn && s.roles && s.roles.length ? ` (${s.roles.join(", ")})` : "";
  clear(document.getElementById("who"), signedIn ? `${s.subject}${roles}` : "");
}

async function route() {
  const mine = ++generation;
  flash("");
  watch([], null);
  header();
  const s = session();
  if (!s || !s.authenticated) {
    disconnect();
    loginPage.render(main(), s, start);
    return;
  }
  connect(document.getElementById("live"));
  const path = decodeURI(location.hash.replace(/^#/, ""));
  for (const [pattern, page, nav] of ROUTES) {
    const m = path.match(pattern);
    if (!m) continue;
    for (const a of document.querySelectorAll("[data-nav]")) {
      a.classList.toggle("active", a.dataset.nav === nav);
    }
    const params = m.slice(1).map(decodeURIComponent);
    try {
      const live = await page.render(main(), ...params);
      if (mine === generation && live) watch(live.topics, live.refresh);
    } catch (err) {
      if (mine === generation) clear(main(), h("p", { class: "error" }, describe(err)));
    }
    return;
  }
  clear(main(), h("p", {}, "No such page. ", h("a", { href: "#/" }, "Overview")));
}

async function start() {
  try {
    await loadSession();
  } catch (err) {
    clear(main(), h("p", { class: "error" }, `Cannot reach the console API: ${describe(err)}`));
    return;
  }
  await route();
}

window.addEventListener("hashchange", route);
window.addEventListener("nmo-session-lost", () => {
  if (session() && session().authenticated) start();
});
document.getElementById("logout").addEventListener("click", async () => {
  try {
    await logout();
  } catch (err) {
    flash(describe(err));
  }
  await start();
});
start();
