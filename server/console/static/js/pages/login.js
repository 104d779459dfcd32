// The sign-in screen: an API token (auth token), the declared name (auth none), and the
// OIDC authorization-code flow when the server offers it.
import { login } from "../api.js";
import { clear, h } from "../dom.js";
import { describe } from "../ui.js";

function oidcOnly(main, s) {
  const how = s && s.oidc_login
    ? h("p", {}, h("a", { class: "button primary", href: "/login/oidc", id: "login-oidc" },
      "Sign in with your identity provider"))
    : h("p", { class: "error" }, "This control plane accepts client certificates only; the "
      + "console needs an API token or OIDC (docs/security.md).");
  clear(main, h("div", { class: "login card" }, h("h1", {}, "Sign in"), how));
}

export function render(main, s, done) {
  const mode = (s && s.auth_mode) || "none";
  if (mode === "oidc" || mode === "mtls") {
    oidcOnly(main, s);
    return;
  }
  const byName = mode === "none";
  const input = h("input", {
    id: byName ? "login-name" : "login-token", name: byName ? "name" : "token",
    type: byName ? "text" : "password", autocomplete: byName ? "username" : "off",
    placeholder: byName ? "you@company.com" : "nmo_…", required: true,
  });
  const error = h("p", { class: "error", id: "login-error", hidden: true });
  const form = h("form", { class: "login card", id: "login-form" },
    h("h1", {}, "Sign in"),
    h("label", { for: input.id }, byName ? "Your name" : "API token"),
    input,
    byName ? h("p", { class: "muted" },
      "This control plane runs without authentication: the name is declared, as every client "
      + "declares it, and recorded in the audit trail.") : null,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    error,
    s && s.oidc_login
      ? h("p", {}, h("a", { class: "button", href: "/login/oidc", id: "login-oidc" },
        "Sign in with your identity provider"))
      : null);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    try {
      await login(byName ? { name: input.value.trim() } : { token: input.value.trim() });
      await done();
    } catch (err) {
      error.textContent = describe(err);
      error.hidden = false;
    }
  });
  clear(main, form);
  input.focus();
}
