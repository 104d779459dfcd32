// The console's HTTP contract: /api/session, /login, /logout and the transcoded gRPC API
// POST /api/v1/<full service name>/<Method> (protobuf JSON, snake_case field names).
// Every POST carries the session's CSRF token.

export const V1 = "neural.mlops.v1";

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.details = (body && body.details) || [];
  }

  // The field a google.rpc.BadRequest detail names, if any.
  get field() {
    for (const d of this.details) {
      const v = (d.field_violations || d.fieldViolations || [])[0];
      if (v) return v.field;
    }
    return "";
  }
}

let current = null;

export function session() {
  return current;
}

async function parse(resp) {
  const text = await resp.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { message: text.slice(0, 200) };
  }
  if (!resp.ok) {
    // The session ended (expired, revoked, signed out elsewhere): back to the sign-in.
    if (resp.status === 401) window.dispatchEvent(new Event("nmo-session-lost"));
    throw new ApiError(resp.status, body);
  }
  return body;
}

export async function loadSession() {
  current = await parse(await fetch("/api/session", { credentials: "same-origin" }));
  return current;
}

async function post(path, body, { csrf = true } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (csrf && current && current.csrf_token) headers["X-CSRF-Token"] = current.csrf_token;
  const resp = await fetch(path, {
    method: "POST", credentials: "same-origin", headers, body: JSON.stringify(body || {}),
  });
  return parse(resp);
}

export async function login(credentials) {
  current = await post("/login", credentials, { csrf: false });
  return current;
}

export async function logout() {
  try {
    await post("/logout", {});
  } finally {
    current = null;
  }
}

// One unary RPC: rpc("RegistryService", "ListModels", {...}).
export function rpc(service, method, body = {}) {
  const full = service.includes(".") ? service : `${V1}.${service}`;
  return post(`/api/v1/${full}/${method}`, body);
}

// Whether this principal may call the RPC (session.allowed lists "<Service>/<Method>",
// with the service's full or short name).
export function can(service, method) {
  if (!current || !current.allowed) return false;
  const short = service.includes(".") ? service.split(".").pop() : service;
  const names = new Set([`${short}/${method}`, `${V1}.${short}/${method}`,
    `/${V1}.${short}/${method}`]);
  return current.allowed.some((a) => names.has(a));
}
