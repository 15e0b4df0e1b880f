// scimkit admin console. Plain JavaScript, no build step, no external resources.
// Every piece of text that comes from the server (group and user names are chosen by the
// identity provider) is put in the page with textContent, never as HTML.
"use strict";

// ---- small helpers ----------------------------------------------------------------------

function $(sel, root) { return (root || document).querySelector(sel); }

// Replaces a node's children, skipping null/undefined/false (optional parts of a view).
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : String(c))));
}

// el("tag", {class, id, text, onclick, ...attributes}, ...children)
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k === "value") e.value = v;
    else if (k === "checked") e.checked = !!v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// Calls the admin API. The custom header is required by the server (CSRF defence).
async function api(method, path, body) {
  const init = { method, headers: { "X-Scimkit-Admin": "1" }, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    setLive(false);
    throw new ApiError(0, "The server cannot be reached. Is it still running?");
  }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (r.status === 401 && path !== "/admin/login") {
    // The session expired (or the server restarted): back to the login form, which opens
    // this same section again once logged in.
    leaving = true;
    location.reload();
    throw new ApiError(401, "Logged out.");
  }
  if (r.status >= 500) setLive(false);
  if (!r.ok) throw new ApiError(r.status, (data && data.error) || ("Error " + r.status));
  return data;
}

function tenantApi(path) { return "/admin/api/tenants/" + encodeURIComponent(state.tenant) + path; }

let flashTimer = null;
function flash(message, bad) {
  const f = $("#flash");
  f.textContent = message;
  f.className = "flash" + (bad ? " bad" : "");
  f.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { f.hidden = true; }, bad ? 7000 : 3500);
}

function fail(e) { flash(e.message || String(e), true); }

// "live" while polling works, "offline" while the server cannot be reached.
function setLive(ok) {
  const live = $("#live");
  if (!live) return;
  live.classList.toggle("offline", !ok);
  live.textContent = ok ? "live" : "offline: retrying";
  live.title = ok ? "Follows the server: no reload needed" : "The server cannot be reached; the page retries every few seconds";
}

function when(iso) {
  if (!iso) return el("span", { class: "muted", text: "never" });
  const d = new Date(iso);
  const secs = Math.round((Date.now() - d.getTime()) / 1000);
  let rel;
  if (secs < 45) rel = "just now";
  else if (secs < 3600) rel = Math.round(secs / 60) + " min ago";
  else if (secs < 86400) rel = Math.round(secs / 3600) + " h ago";
  else rel = d.toLocaleDateString();
  return el("time", { datetime: iso, title: d.toLocaleString(), text: rel });
}

async function copy(text, input, button) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch (e) {
    // No clipboard API (plain-HTTP origin other than localhost, or denied): select and copy.
    if (input) {
      input.focus();
      input.select();
      try { ok = document.execCommand("copy"); } catch (e2) { ok = false; }
    }
  }
  if (ok && input && input.id === "new-token" && state.oneTime) state.oneTime.copied = true;
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  button.textContent = ok ? "Copied ✓" : "Select and press Ctrl+C";
  setTimeout(() => { button.textContent = label; }, 2000);
}

function copyBox(id, value, buttonId) {
  const input = el("input", { type: "text", id, value, readonly: true, "aria-label": "value to copy", onfocus: (e) => e.target.select() });
  const button = el("button", { type: "button", id: buttonId, text: "Copy", onclick: () => copy(input.value, input, button) });
  return el("div", { class: "copybox" }, input, button);
}

function empty(title, text) { return el("div", { class: "empty" }, el("strong", { text: title }), text); }

function pager(start, count, total, go) {
  if (total <= count && start === 1) return null;
  const last = Math.min(start + count - 1, total);
  return el("div", { class: "pager" },
    el("span", { class: "muted", text: total === 0 ? "0 of 0" : `${start}–${last} of ${total}` }),
    el("button", { type: "button", class: "prev", text: "‹ Previous", disabled: start <= 1, onclick: () => go(Math.max(1, start - count)) }),
    el("button", { type: "button", class: "next", text: "Next ›", disabled: last >= total, onclick: () => go(start + count) }));
}

// ---- state and routing -----------------------------------------------------------------------

// The sections; the URL's hash is `#section` or `#section/ID` (a user or a collection).
const SECTIONS = ["connections", "users", "collections", "log", "policies"];
const state = {
  view: "connections", param: null,
  tenants: [],
  tenant: null,          // the selected connection's id
  oneTime: null,         // {tenant, token, label, prefix, copied}: the token just generated, shown once
  groupStart: 1, groupQuery: "", memberStart: 1,
  userStart: 1, userQuery: "", userBy: "userName", userStatus: "all",
  log: { outcome: "", resource: "", q: "", cursors: [null], page: 0, open: new Set() },
  checklist: sessionStorage.getItem("checklist") || "okta",
  head: null,            // the change-feed position the data on screen reflects
  pickerQuery: "",
};
const GROUP_PAGE = 25, MEMBER_PAGE = 50, PICKER_PAGE = 200, USER_PAGE = 25, LOG_PAGE = 50;
let pollTimer = null, pollGeneration = 0;
// Set when the page is being reloaded on purpose (no "unsaved token" prompt then).
let leaving = false;

function currentTenant() { return state.tenants.find((t) => t.id === state.tenant) || null; }

// True while a generated token is on screen and was not copied with the page's button.
function tokenUncopied() { return !!(state.oneTime && !state.oneTime.copied); }

// Asks before an action that would lose an uncopied token; true to go on.
function confirmLeaveToken() {
  if (!tokenUncopied()) return true;
  if (!confirm("The new bearer token has not been copied. It cannot be shown again: leave it anyway?")) return false;
  state.oneTime = null;
  return true;
}

async function loadTenants() {
  const data = await api("GET", "/admin/api/tenants");
  state.tenants = data.tenants;
  if (!currentTenant()) {
    const saved = sessionStorage.getItem("tenant");
    state.tenant = state.tenants.some((t) => t.id === saved) ? saved : (state.tenants[0] ? state.tenants[0].id : null);
  }
  renderPicker();
}

function selectTenant(id) {
  if (state.tenant !== id) {
    state.oneTime = null;
    state.groupStart = 1; state.groupQuery = ""; state.memberStart = 1;
    state.userStart = 1; state.userQuery = ""; state.userStatus = "all";
    state.log = { outcome: "", resource: "", q: "", cursors: [null], page: 0, open: new Set() };
    state.head = null; state.pickerQuery = "";
    if (state.param && (state.view === "users" || state.view === "collections")) {
      history.replaceState(null, "", "#" + state.view);
      state.param = null;
    }
  }
  state.tenant = id;
  if (id) sessionStorage.setItem("tenant", id);
  renderPicker();
}

function renderPicker() {
  const s = $("#tenant-select");
  fill(s, ...(state.tenants.length
    ? state.tenants.map((t) => el("option", { value: t.id, title: t.id, text: t.name }))
    : [el("option", { value: "", text: "no connections yet" })]));
  s.value = state.tenant || "";
  s.disabled = state.tenants.length === 0;
}

function parseHash() {
  const [view, ...rest] = location.hash.slice(1).split("/");
  let param = rest.length ? rest.join("/") : null;
  try { param = param === null ? null : decodeURIComponent(param); } catch (e) { param = null; }
  return SECTIONS.includes(view) ? { view, param: param || null } : { view: "connections", param: null };
}

// The section shown follows the hash; leaving an uncopied token asks first.
function route() {
  const { view, param } = parseHash();
  if (view !== state.view && state.view === "connections" && !confirmLeaveToken()) {
    history.replaceState(null, "", "#connections");
    return;
  }
  if (view !== "connections") state.oneTime = null;
  state.view = view;
  state.param = param;
  for (const a of document.querySelectorAll("#nav a")) {
    const current = a.dataset.view === view;
    a.classList.toggle("active", current);
    if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  render();
}

async function render() {
  const main = $("#view");
  stopPolling();
  try {
    if (state.view === "connections") await renderConnections(main);
    else if (state.view === "users") await renderUsers(main);
    else if (state.view === "collections") await renderCollections(main);
    else if (state.view === "log") await renderLog(main);
    else await renderPolicies(main);
  } catch (e) {
    fill(main, el("div", { class: "card notice bad", text: e.message }));
    // Keep polling so that the page recovers (and shows "offline") by itself.
    startPolling(async () => { await api("GET", "/admin/api/tenants"); render(); });
  }
}

// Runs `tick` every two seconds while this view is on screen; the "live" indicator says
// whether the last tick reached the server.
function startPolling(tick) {
  stopPolling();
  const generation = ++pollGeneration;
  const tenant = state.tenant;
  const loop = async () => {
    if (generation !== pollGeneration) return;
    if (!document.hidden && tenant === state.tenant) {
      try {
        await tick();
        if (generation === pollGeneration) setLive(true);
      } catch (e) {
        if (e.status === 0 || e.status >= 500) setLive(false);
      }
    }
    if (generation === pollGeneration) pollTimer = setTimeout(loop, 2000);
  };
  pollTimer = setTimeout(loop, 2000);
}

function stopPolling() { pollGeneration++; if (pollTimer) clearTimeout(pollTimer); pollTimer = null; }

// A tick that refreshes when the change feed moved.
function onChanges(refresh) {
  return async () => {
    if (state.head === null) { await refresh(); return; }
    const r = await api("GET", tenantApi("/changes?after=" + state.head));
    if (r.changed) await refresh();
  };
}

function badge(active) {
  return el("span", { class: "badge active " + (active ? "on" : "bad"), text: active ? "active" : "inactive" });
}

// ---- IdP connections --------------------------------------------------------------------

async function renderConnections(main) {
  await loadTenants();
  const t = currentTenant();
  const list = el("div", { class: "card" },
    el("h2", { text: "IdP connections" }),
    el("p", { class: "muted", text: "One connection per identity provider (an Okta or Entra ID app). Each has its own SCIM base URL and tokens." }),
    state.tenants.length === 0
      ? empty("No IdP connections yet.", "Create one below for each identity provider that will provision users.")
      : el("div", { class: "scroll" }, el("table", { id: "connections" },
          el("thead", {}, el("tr", {}, el("th", { text: "Name" }), el("th", { text: "ID", class: "hide-narrow" }), el("th", { text: "SCIM" }))),
          el("tbody", {}, state.tenants.map((c) => el("tr", {
            class: "clickable" + (c.id === state.tenant ? " selected" : ""), "data-id": c.id,
            onclick: (e) => { if (e.target.closest("button")) return; pickConnection(c.id); },
          }, el("td", {}, el("button", { type: "button", class: "rowlink", "aria-pressed": c.id === state.tenant ? "true" : "false", text: c.name, onclick: () => pickConnection(c.id) })),
             el("td", { class: "mono hide-narrow", text: c.id }),
             el("td", {}, el("span", { class: "badge " + (c.scimEnabled ? "on" : "off"), text: c.scimEnabled ? "on" : "off" }))))))),
    createConnectionForm());
  const details = t ? await connectionDetails(t) : el("div", { class: "card" }, empty("No connection selected.", "Create a connection to get its SCIM base URL and a bearer token."));
  fill(main, el("div", { class: "grid" }, el("div", {}, list, t ? el("div", { class: "card", id: "checklist-card" }) : null), details));
  if (t) {
    await refreshHealth();
    startPolling(refreshHealth);
  }
}

function pickConnection(id) {
  if (id === state.tenant) return;
  if (!confirmLeaveToken()) return;
  selectTenant(id);
  render();
}

function slug(name) {
  return name.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64);
}

function createConnectionForm() {
  const name = el("input", { type: "text", id: "new-connection-name", placeholder: "Okta production", required: true, maxlength: 256 });
  const id = el("input", { type: "text", id: "new-connection-id", placeholder: "okta-production", required: true, maxlength: 64, pattern: "[A-Za-z0-9][A-Za-z0-9-]*" });
  let idEdited = false;
  name.addEventListener("input", () => { if (!idEdited) id.value = slug(name.value); });
  id.addEventListener("input", () => { idEdited = true; });
  const error = el("p", { class: "error", role: "alert", hidden: true });
  const form = el("form", { id: "create-connection", onsubmit: async (e) => {
    e.preventDefault();
    error.hidden = true;
    if (!confirmLeaveToken()) return;
    try {
      const t = await api("POST", "/admin/api/tenants", { id: id.value, name: name.value });
      selectTenant(t.id);
      flash("Created connection " + t.name + ". Switch SCIM on when the IdP is ready.");
      render();
    } catch (err) { error.textContent = err.message; error.hidden = false; }
  } },
    el("h3", { text: "New connection" }),
    el("div", { class: "row" },
      el("div", { class: "grow" }, el("label", { for: "new-connection-name", text: "Name" }), name),
      el("div", { class: "grow" }, el("label", { for: "new-connection-id", text: "ID (in the base URL)" }), id)),
    error,
    el("p", {}, el("button", { type: "submit", class: "primary", id: "create-connection-button", text: "Create connection" })));
  return form;
}

function scimStatus(t, activeTokens) {
  if (!t.scimEnabled) {
    return el("p", { class: "notice info", id: "scim-status", text: "SCIM provisioning is off: every request of the IdP is refused (401), whatever token it carries. Tokens and data are kept." });
  }
  if (activeTokens === 0) {
    return el("p", { class: "notice warn", id: "scim-status", text: "SCIM provisioning is on, but no token is active: no request of the IdP can authenticate. Generate a bearer token and paste it into the IdP." });
  }
  return el("p", { class: "notice ok", id: "scim-status", text: "SCIM provisioning is on: the IdP can create, update and deactivate users and push groups with a valid token." });
}

async function connectionDetails(t) {
  const { tokens } = await api("GET", tenantApi("/tokens"));
  const toggle = el("input", { type: "checkbox", id: "scim-switch", role: "switch", checked: t.scimEnabled, onchange: async (e) => {
    const on = e.target.checked;
    if (!on && !confirm("Switch SCIM provisioning off for “" + t.name + "”? Every request of the IdP will be refused (401) until it is switched back on. Users, groups and tokens are kept.")) {
      e.target.checked = true;
      return;
    }
    e.target.disabled = true;
    try {
      await api("PUT", tenantApi("/scim"), { enabled: on });
      flash("SCIM provisioning " + (on ? "switched on" : "switched off") + " for " + t.name + ".");
    } catch (err) { fail(err); }
    render();
  } });
  const active = tokens.filter((k) => k.status === "active").length;
  const label = el("input", { type: "text", id: "token-label", placeholder: "Label, e.g. Okta production", maxlength: 256, "aria-label": "Label of the new token" });
  const generate = el("button", { type: "button", class: "primary", id: "generate-token", text: "Generate bearer token", onclick: async () => {
    if (!confirmLeaveToken()) return;
    generate.disabled = true;
    try {
      const r = await api("POST", tenantApi("/tokens"), { label: label.value });
      state.oneTime = { tenant: t.id, token: r.token, label: r.label, prefix: r.prefix, copied: false };
      render();
    } catch (err) { fail(err); generate.disabled = false; }
  } });
  let once = null;
  if (state.oneTime && state.oneTime.tenant === t.id) {
    once = el("div", { class: "notice warn token-once", id: "one-time-token" },
      el("strong", { text: "Your new bearer token (" + state.oneTime.label + ", id " + state.oneTime.prefix + "…)" }),
      copyBox("new-token", state.oneTime.token, "copy-token"),
      el("p", { text: "Copy it now and paste it into the IdP (Okta: API Token; Entra: Secret Token). It will not be shown again: only its hash is kept." }),
      el("button", { type: "button", id: "dismiss-token", text: "I have copied it", onclick: () => { state.oneTime = null; render(); } }));
  }
  return el("div", { class: "card", id: "connection-details" },
    el("div", { class: "spread" },
      el("h2", { text: t.name }),
      el("label", { class: "switch", for: "scim-switch" }, toggle, el("span", { class: "track", "aria-hidden": "true" }), "SCIM Provisioning")),
    scimStatus(t, active),
    el("section", { id: "health", "aria-label": "Connection health" }),
    el("h3", { text: "SCIM Base URL" }),
    copyBox("base-url", t.baseUrl, "copy-base-url"),
    el("p", { class: "muted", text: "Okta: SCIM connector base URL, unique identifier field userName, authentication mode HTTP Header. Entra ID: Tenant URL." }),
    el("h3", { text: "Bearer tokens" }),
    el("div", { class: "row" }, el("div", { class: "grow" }, label), generate),
    !t.scimEnabled && tokens.length === 0 ? el("p", { class: "muted", text: "A token can be generated now; it works once SCIM provisioning is switched on." }) : null,
    once,
    tokens.length === 0
      ? empty("No tokens yet.", "Generate one and paste it into the IdP.")
      : el("div", { class: "scroll" }, el("table", { id: "tokens" },
          el("thead", {}, el("tr", {}, el("th", { text: "Label" }), el("th", { text: "ID" }), el("th", { text: "Created", class: "hide-narrow" }), el("th", { text: "Last used" }), el("th", { text: "Status" }), el("th", {}, el("span", { class: "visually-hidden", text: "Actions" })))),
          el("tbody", {}, tokens.map((k) => el("tr", { "data-id": k.id },
            el("td", { class: "label", text: k.label }),
            el("td", { class: "mono prefix", title: "The start of the token's id (not of its secret)", text: k.prefix + "…" }),
            el("td", { class: "hide-narrow" }, when(k.created)), el("td", { class: "last-used" }, when(k.lastUsed)),
            el("td", { class: "status" }, el("span", { class: "badge " + (k.status === "active" ? "on" : "bad"), text: k.status }),
              k.status === "revoked" ? el("span", { class: "revoked-at muted" }, " ", k.revokedAt ? when(k.revokedAt) : "(time not recorded)") : null),
            el("td", { class: "num" }, k.status === "active" ? el("button", { type: "button", class: "danger revoke", text: "Revoke", "aria-label": "Revoke the token " + k.label + " (" + k.prefix + "…)", onclick: async () => {
              const last = active === 1 && t.scimEnabled ? " It is the last active token: the IdP will be locked out." : "";
              if (!confirm("Revoke the token “" + k.label + "”? Requests with it are refused at once." + last)) return;
              try { await api("POST", tenantApi("/tokens/" + encodeURIComponent(k.id) + "/revoke")); flash("Token revoked."); render(); } catch (err) { fail(err); }
            } }) : null)))))));
}

// The health panel and the setup checklist of the selected connection (polled).
async function refreshHealth() {
  const area = $("#health");
  if (!area) return;
  const h = await api("GET", tenantApi("/health"));
  const last = h.lastError;
  fill(area,
    el("h3", { text: "Connection health" }),
    el("dl", { class: "stats" },
      el("div", {}, el("dt", { text: "Users" }), el("dd", { id: "health-users", text: h.users })),
      el("div", {}, el("dt", { text: "Collections" }), el("dd", { id: "health-groups", text: h.groups })),
      el("div", {}, el("dt", { text: "Active tokens" }), el("dd", { id: "health-tokens", text: h.activeTokens }))),
    el("p", { id: "health-last-success" }, el("strong", { text: "Last successful request: " }), when(h.lastSuccess || null)),
    el("p", { id: "health-last-error" }, el("strong", { text: "Last error: " }),
      last ? [when(last.time), " — " + last.status + ": " + (last.reason || last.detail || "")] : el("span", { class: "muted", text: "none" })),
    h.warnings.length === 0 ? null : el("ul", { id: "health-warnings", class: "warnings" },
      h.warnings.map((w) => el("li", { class: "notice warn", "data-code": w.code, text: w.text }))));
  renderChecklist(h);
}

// The steps of the README for each IdP, ticked off from what the server saw.
const CHECKLISTS = {
  okta: { name: "Okta", steps: [
    ["scimOn", "Switch SCIM provisioning on for this connection"],
    ["token", "Generate a bearer token; in Okta: Provisioning → Integration, SCIM connector base URL, unique identifier userName, HTTP Header with the token"],
    ["tested", "Test Connector Configuration (Okta sends GET /Users?startIndex=1&count=2)"],
    ["userCreated", "Assign people: the first user arrives (GET /Users?filter=…, then POST /Users)"],
    ["groupPushed", "Push Groups: the first group arrives (POST /Groups)"],
    ["membership", "Group memberships follow (PATCH /Groups)"],
  ] },
  entra: { name: "Microsoft Entra ID", steps: [
    ["scimOn", "Switch SCIM provisioning on for this connection"],
    ["token", "Generate a bearer token; in Entra: Provisioning → Admin Credentials, Tenant URL and Secret Token"],
    ["tested", "Test Connection (Entra filters on a random userName: GET /Users?filter=…)"],
    ["userCreated", "Start provisioning: the first user arrives (POST /Users)"],
    ["groupPushed", "Provision groups: the first group arrives (POST /Groups)"],
    ["membership", "Members are added with PATCH /Groups"],
  ] },
};

function renderChecklist(h) {
  const card = $("#checklist-card");
  if (!card) return;
  const list = CHECKLISTS[state.checklist] || CHECKLISTS.okta;
  const done = h.checklist || {};
  const tabs = el("div", { class: "tabs", role: "group", "aria-label": "Identity provider" },
    Object.entries(CHECKLISTS).map(([key, c]) => el("button", { type: "button", class: "tab", id: "checklist-" + key, "aria-pressed": key === state.checklist ? "true" : "false", text: c.name, onclick: () => {
      state.checklist = key; sessionStorage.setItem("checklist", key); renderChecklist(h); $("#checklist-" + key).focus();
    } })));
  const steps = list.steps.map(([key, text]) => {
    const when_ = done[key];
    return el("li", { class: "step" + (when_ ? " done" : ""), "data-step": key },
      el("span", { class: "tick", "aria-hidden": "true", text: when_ ? "✓" : "○" }),
      el("span", { class: "visually-hidden", text: when_ ? "Done: " : "To do: " }),
      el("span", { text }), when_ && when_ !== true ? el("span", { class: "muted" }, " (", when(when_), ")") : null);
  });
  const count = list.steps.filter(([key]) => done[key]).length;
  fill(card, el("h2", { text: "Setup checklist" }),
    el("p", { class: "muted", id: "checklist-progress", text: count + " of " + list.steps.length + " steps done for " + list.name + "." }),
    tabs, el("ol", { id: "checklist", class: "checklist" }, steps));
}

// ---- users ----------------------------------------------------------------------------------

function needTenant(main, what) {
  fill(main, el("div", { class: "card" }, empty("No IdP connection yet.", "Create a connection first: " + what + " belong to a connection."),
    el("p", { class: "empty" }, el("a", { href: "#connections", text: "Go to IdP connections" }))));
}

function scimOffNotice(t) {
  return !t.scimEnabled ? el("p", { class: "notice info", text: "SCIM provisioning is off for " + t.name + ": the IdP cannot push changes until it is switched on (IdP connections)." }) : null;
}

async function renderUsers(main) {
  await loadTenants();
  const t = currentTenant();
  if (!t) return needTenant(main, "users");
  const search = el("input", { type: "search", id: "user-search", placeholder: "Search", value: state.userQuery, "aria-label": "Search users" });
  const by = el("select", { id: "user-search-by", "aria-label": "Search in" },
    el("option", { value: "userName", text: "userName starts with" }),
    el("option", { value: "email", text: "email contains" }),
    el("option", { value: "externalId", text: "externalId is" }));
  by.value = state.userBy;
  const status = el("select", { id: "user-status", "aria-label": "Active or inactive" },
    el("option", { value: "all", text: "All users" }),
    el("option", { value: "active", text: "Active only" }),
    el("option", { value: "inactive", text: "Inactive only" }));
  status.value = state.userStatus;
  let debounce = null;
  const changed = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      state.userQuery = search.value; state.userBy = by.value; state.userStatus = status.value; state.userStart = 1;
      refreshUsers().catch(fail);
    }, 250);
  };
  search.addEventListener("input", changed);
  by.addEventListener("change", changed);
  status.addEventListener("change", changed);
  fill(main, scimOffNotice(t),
    el("div", { class: "grid" },
      el("div", { class: "card" },
        el("h2", { text: "Users" }),
        el("p", { class: "muted", text: "The users " + t.name + " provisioned, by userName." }),
        el("div", { class: "row filters" }, el("div", { class: "grow" }, search), by, status),
        el("div", { id: "users-area" })),
      el("div", { class: "card", id: "user-detail" })));
  await refreshUsers();
  await refreshUser();
  startPolling(onChanges(async () => { await refreshUsers(); await refreshUser(); }));
}

async function refreshUsers() {
  const area = $("#users-area");
  if (!area) return;
  const q = new URLSearchParams({ start: state.userStart, count: USER_PAGE, by: state.userBy, status: state.userStatus });
  if (state.userQuery.trim()) q.set("q", state.userQuery.trim());
  const [data, head] = await Promise.all([api("GET", tenantApi("/users?" + q)), api("GET", tenantApi("/changes?after=0"))]);
  state.head = head.head;
  if (data.users.length === 0 && state.userStart > 1) { state.userStart = 1; return refreshUsers(); }
  fill(area,
    data.total === 0
      ? (state.userQuery.trim() || state.userStatus !== "all" ? empty("No user matches.", "") : empty("No users yet.", "When the IdP provisions users, they appear here within seconds."))
      : el("div", { class: "scroll" }, el("table", { id: "users" },
          el("thead", {}, el("tr", {}, el("th", { text: "userName" }), el("th", { text: "Email", class: "hide-narrow" }), el("th", { text: "Active" }))),
          el("tbody", {}, data.users.map((u) => el("tr", {
            class: "clickable" + (u.id === state.param ? " selected" : ""), "data-id": u.id,
            onclick: (e) => { if (!e.target.closest("a")) location.hash = "#users/" + encodeURIComponent(u.id); },
          }, el("td", { class: "user-name" }, el("a", { href: "#users/" + encodeURIComponent(u.id), "aria-current": u.id === state.param ? "true" : null, text: u.userName || "(no userName)" })),
             el("td", { class: "hide-narrow", text: u.email || "" }),
             el("td", {}, badge(u.active))))))),
    el("p", { class: "muted", id: "users-total", text: data.total + (data.total === 1 ? " user" : " users") }),
    pager(state.userStart, USER_PAGE, data.total, (s) => { state.userStart = s; refreshUsers().catch(fail); }));
}

async function refreshUser() {
  const area = $("#user-detail");
  if (!area) return;
  if (!state.param) { fill(area, empty("Pick a user", "to see their collections and state.")); return; }
  let u;
  try {
    u = await api("GET", tenantApi("/users/" + encodeURIComponent(state.param)));
  } catch (e) {
    if (e.status === 404) { fill(area, empty("No such user.", "The IdP may have deleted it.")); return; }
    throw e;
  }
  const emails = Array.isArray(u.emails) ? u.emails.map((e) => e && e.value).filter(Boolean) : [];
  fill(area,
    el("h2", { id: "user-title", text: u.userName || "(no userName)" }),
    el("dl", { class: "facts" },
      el("dt", { text: "Display name" }), el("dd", { text: u.displayName || "—" }),
      el("dt", { text: "State" }), el("dd", { id: "user-active" }, badge(u.active)),
      el("dt", { text: "externalId" }), el("dd", { class: "mono", id: "user-external-id", text: u.externalId || "—" }),
      el("dt", { text: "Emails" }), el("dd", { text: emails.join(", ") || "—" }),
      el("dt", { text: "Last change" }), el("dd", { id: "user-last-change" }, when(u.lastModified)),
      el("dt", { text: "Created" }), el("dd", {}, when(u.created)),
      el("dt", { text: "id" }), el("dd", { class: "mono", text: u.id })),
    el("h3", { text: "Collections" }),
    u.groups.length === 0 ? el("p", { class: "muted", id: "user-groups", text: "Member of no collection." }) :
      el("ul", { id: "user-groups", class: "links" }, u.groups.map((g) => el("li", {},
        el("a", { href: "#collections/" + encodeURIComponent(g.id), text: g.name || g.id })))),
    el("h3", { text: "Policies" }),
    (u.policies || []).length === 0 ? el("p", { class: "muted", id: "user-policies", text: u.active ? "No policy applies." : "None: the user is deactivated." }) :
      el("ul", { id: "user-policies" }, u.policies.map(policyLine)));
}

// ---- user collections ---------------------------------------------------------------------

async function renderCollections(main) {
  await loadTenants();
  const t = currentTenant();
  if (!t) return needTenant(main, "user collections");
  const search = el("input", { type: "search", id: "group-search", placeholder: "Filter by name", value: state.groupQuery, "aria-label": "Filter collections by name" });
  let debounce = null;
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { state.groupQuery = search.value; state.groupStart = 1; refreshGroups().catch(fail); }, 250);
  });
  fill(main, scimOffNotice(t),
    el("div", { class: "grid" },
      el("div", { class: "card" },
        el("h2", { text: "User collections" }),
        el("p", { class: "muted", text: "The groups " + t.name + " pushed, with their synced users." }),
        search,
        el("div", { id: "groups-area" })),
      el("div", { class: "card", id: "members-area" })));
  await refreshGroups();
  await refreshMembers();
  startPolling(onChanges(async () => { await refreshGroups(); await refreshMembers(); }));
}

async function refreshGroups() {
  const area = $("#groups-area");
  if (!area) return;
  const q = new URLSearchParams({ start: state.groupStart, count: GROUP_PAGE });
  if (state.groupQuery.trim()) q.set("q", state.groupQuery.trim());
  const data = await api("GET", tenantApi("/groups?" + q));
  state.head = data.head;
  if (data.groups.length === 0 && state.groupStart > 1) { state.groupStart = 1; return refreshGroups(); }
  fill(area,
    data.total === 0
      ? (state.groupQuery.trim()
          ? empty("No collection matches “" + state.groupQuery.trim() + "”.", "")
          : empty("No user collections yet.", "When the IdP pushes groups (Okta: Push Groups; Entra: group assignments), they appear here within seconds."))
      : el("div", { class: "scroll" }, el("table", { id: "groups" },
          el("thead", {}, el("tr", {}, el("th", { text: "Collection" }), el("th", { class: "num", text: "Members" }), el("th", { text: "Last change", class: "hide-narrow" }))),
          el("tbody", {}, data.groups.map((g) => el("tr", {
            class: "clickable" + (g.id === state.param ? " selected" : ""), "data-id": g.id,
            onclick: (e) => { if (!e.target.closest("a")) openGroup(g.id); },
          }, el("td", { class: "name" }, el("a", { href: "#collections/" + encodeURIComponent(g.id), "aria-current": g.id === state.param ? "true" : null, text: g.name || "(no name)" })),
             el("td", { class: "num members", text: g.members }), el("td", { class: "hide-narrow" }, when(g.lastModified))))))),
    pager(state.groupStart, GROUP_PAGE, data.total, (s) => { state.groupStart = s; refreshGroups().catch(fail); }));
}

function openGroup(id) {
  const hash = "#collections/" + encodeURIComponent(id);
  if (location.hash === hash) { state.memberStart = 1; refreshMembers().catch(fail); } else location.hash = hash;
}

async function refreshMembers() {
  const area = $("#members-area");
  if (!area) return;
  if (!state.param) {
    fill(area, empty("Pick a collection", "to see its users."));
    return;
  }
  let data;
  try {
    data = await api("GET", tenantApi("/groups/" + encodeURIComponent(state.param) + "/members?" + new URLSearchParams({ start: state.memberStart, count: MEMBER_PAGE })));
  } catch (e) {
    if (e.status === 404) { fill(area, empty("This collection was deleted by the IdP.", "")); return; }
    throw e;
  }
  const counts = data.total + (data.total === 1 ? " member" : " members") +
    (data.total ? ": " + data.active + " active, " + data.inactive + " inactive" : "");
  fill(area,
    el("h2", { id: "members-title", text: data.group.name || "(no name)" }),
    el("p", { class: "muted", id: "members-count", text: counts }),
    data.total === 0 ? empty("No members.", "The IdP has pushed this collection without users.") :
      el("div", { class: "scroll" }, el("table", { id: "members" },
        el("thead", {}, el("tr", {}, el("th", { text: "userName" }), el("th", { text: "Display name", class: "hide-narrow" }), el("th", { text: "Active" }))),
        el("tbody", {}, data.members.map((m) => el("tr", { "data-id": m.id },
          el("td", { class: "user-name" }, m.type === "User"
            ? el("a", { href: "#users/" + encodeURIComponent(m.id), text: m.userName || "—" })
            : (m.userName || (m.type === "Group" ? "(nested group)" : "—"))),
          el("td", { class: "hide-narrow", text: m.displayName || "" }),
          el("td", {}, m.active === null || m.active === undefined
            ? el("span", { class: "muted", text: "—" })
            : badge(m.active))))))),
    pager(state.memberStart, MEMBER_PAGE, data.total, (s) => { state.memberStart = s; refreshMembers().catch(fail); }));
}

// ---- provisioning log -----------------------------------------------------------------------

async function renderLog(main) {
  await loadTenants();
  const t = currentTenant();
  if (!t) return needTenant(main, "provisioning logs");
  const outcome = el("select", { id: "log-outcome", "aria-label": "Outcome" },
    el("option", { value: "", text: "All outcomes" }), el("option", { value: "failure", text: "Failures" }),
    el("option", { value: "tolerated", text: "Tolerated" }), el("option", { value: "success", text: "Successes" }));
  outcome.value = state.log.outcome;
  const resource = el("select", { id: "log-resource", "aria-label": "Resource" },
    el("option", { value: "", text: "All resources" }), el("option", { value: "User", text: "Users" }), el("option", { value: "Group", text: "Groups" }));
  resource.value = state.log.resource;
  const text = el("input", { type: "search", id: "log-text", placeholder: "Search path, name, reason", value: state.log.q, "aria-label": "Search the log" });
  let debounce = null;
  const changed = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      state.log.outcome = outcome.value; state.log.resource = resource.value; state.log.q = text.value;
      state.log.cursors = [null]; state.log.page = 0;
      refreshLog().catch(fail);
    }, 250);
  };
  outcome.addEventListener("change", changed); resource.addEventListener("change", changed); text.addEventListener("input", changed);
  fill(main, scimOffNotice(t),
    el("div", { class: "card" },
      el("h2", { text: "Provisioning log" }),
      el("p", { class: "muted", text: "Every request " + t.name + " sent, newest first: what it asked, what it got, and what was tolerated. Open an entry for its details." }),
      el("div", { class: "row filters" }, outcome, resource, el("div", { class: "grow" }, text)),
      el("div", { id: "log-area" })));
  await refreshLog();
  // Live on the first page; an older page stays as it is.
  startPolling(async () => { if (state.log.page === 0) await refreshLog(); else await api("GET", tenantApi("/changes?after=0")); });
}

function outcomeLabel(kind) { return kind === "failure" ? "failed" : kind === "tolerated" ? "tolerated" : "ok"; }

function reasonOf(e) {
  if (e.kind === "failure") return e.authFailureText ? "401: " + e.authFailureText : (e.detail || "status " + e.status);
  if (e.kind === "tolerated") return (e.tolerances || []).map((n) => n.detail).join("; ") ||
    (e.operations || []).filter((o) => o.status >= 400).map((o) => o.method + " " + o.path + ": " + (o.detail || o.status)).join("; ");
  return "";
}

async function refreshLog() {
  const area = $("#log-area");
  if (!area) return;
  const L = state.log;
  const q = new URLSearchParams({ count: LOG_PAGE });
  if (L.outcome) q.set("outcome", L.outcome);
  if (L.resource) q.set("resource", L.resource);
  if (L.q.trim()) q.set("q", L.q.trim());
  const before = L.cursors[L.page];
  if (before !== null && before !== undefined) q.set("before", before);
  const data = await api("GET", tenantApi("/log?" + q));
  if (!data.enabled) {
    fill(area, empty("No provisioning log.", "This server keeps no provisioning log."));
    return;
  }
  const entries = data.events.map((e) => {
    const key = String(e.cursor);
    const open = L.open.has(key);
    const details = el("div", { class: "log-details", id: "log-details-" + key, hidden: !open },
      el("dl", { class: "facts" },
        el("dt", { text: "Time" }), el("dd", { text: new Date(e.time).toLocaleString() }),
        el("dt", { text: "Request" }), el("dd", { class: "mono", text: e.method + " " + e.path }),
        el("dt", { text: "Answer" }), el("dd", { text: e.status + (e.scimType ? " (" + e.scimType + ")" : "") }),
        e.detail ? [el("dt", { text: "Detail" }), el("dd", { text: e.detail })] : null,
        e.authFailureText ? [el("dt", { text: "Real reason" }), el("dd", { class: "auth-reason", text: e.authFailureText })] : null,
        e.resourceType ? [el("dt", { text: "Resource" }), el("dd", {}, e.resourceType + " ",
          e.resourceId && e.resourceType === "User" ? el("a", { href: "#users/" + encodeURIComponent(e.resourceId), text: e.name || e.resourceId }) :
          e.resourceId && e.resourceType === "Group" ? el("a", { href: "#collections/" + encodeURIComponent(e.resourceId), text: e.name || e.resourceId }) :
          (e.name || ""))] : null,
        e.tokenPrefix ? [el("dt", { text: "Token" }), el("dd", { class: "mono", text: e.tokenPrefix + "…" })] : null,
        el("dt", { text: "Duration" }), el("dd", { text: (e.durationMicros / 1000).toFixed(1) + " ms" })),
      (e.tolerances || []).length ? [el("h4", { text: "Tolerated" }), el("ul", { class: "tolerances" }, e.tolerances.map((n) => el("li", { text: n.detail + (n.count > 1 ? " (×" + n.count + ")" : "") })))] : null,
      (e.operations || []).length ? [el("h4", { text: "Bulk operations" }), el("ul", {}, e.operations.map((o) => el("li", { text: o.method + " " + o.path + " → " + o.status + (o.detail ? ": " + o.detail : "") })))] : null);
    const summary = el("button", { type: "button", class: "log-summary", "aria-expanded": open ? "true" : "false", "aria-controls": "log-details-" + key, onclick: () => {
      const now = !L.open.has(key);
      if (now) L.open.add(key); else L.open.delete(key);
      summary.setAttribute("aria-expanded", now ? "true" : "false");
      details.hidden = !now;
    } },
      el("span", { class: "badge " + (e.kind === "failure" ? "bad" : e.kind === "tolerated" ? "warn" : "on"), text: outcomeLabel(e.kind) }),
      el("span", { class: "mono what", text: e.method + " " + (e.endpoint ? "/" + e.endpoint : e.path) + " → " + e.status }),
      e.name ? el("span", { class: "name", text: e.name }) : null,
      el("span", { class: "reason", text: reasonOf(e) }),
      el("span", { class: "when" }, when(e.time)));
    return el("li", { class: "log-entry " + e.kind, "data-kind": e.kind, "data-cursor": key }, summary, details);
  });
  fill(area,
    entries.length === 0 ? empty(L.page === 0 && !L.outcome && !L.resource && !L.q.trim() ? "No requests yet." : "No entry matches.", L.page === 0 ? "Requests of the IdP appear here within seconds." : "") :
      el("ol", { id: "log", class: "log" }, entries),
    el("div", { class: "pager" },
      el("button", { type: "button", class: "prev", text: "‹ Newer", disabled: L.page === 0, onclick: () => { L.page -= 1; refreshLog().catch(fail); } }),
      el("button", { type: "button", class: "next", text: "Older ›", disabled: !data.next, onclick: () => { L.cursors[L.page + 1] = data.next; L.page += 1; refreshLog().catch(fail); } })));
}
// ---- policies -------------------------------------------------------------------------------

async function renderPolicies(main) {
  await loadTenants();
  const t = currentTenant();
  if (!t) return needTenant(main, "policies");
  const username = el("input", { type: "text", id: "check-username", placeholder: "jdoe@example.com", required: true });
  const result = el("div", { id: "check-result" });
  const check = el("form", { id: "check-login", onsubmit: async (e) => {
    e.preventDefault();
    try { renderCheck(result, await api("POST", tenantApi("/check-login"), { userName: username.value })); } catch (err) { fail(err); }
  } },
    el("div", { class: "row" }, el("div", { class: "grow" }, username), el("button", { type: "submit", class: "primary", id: "check-button", text: "Check login" })));
  fill(main, el("div", { class: "grid" },
    el("div", { class: "card" },
      el("h2", { text: "Access policies" }),
      el("p", { class: "muted", text: "The host's own rules: a policy applies to the users of the collections it names, and to the users the IdP grants it (its Entitlement value, when the server runs with --governance), at their next login." }),
      el("div", { id: "policies-area" })),
    el("div", { class: "card" },
      el("h2", { text: "Check login" }),
      el("p", { class: "muted", text: "What the host decides when this user logs in now, from the user's groups and entitlements as the IdP last pushed them." }),
      el("label", { for: "check-username", text: "userName" }),
      check, result)));
  await refreshPolicies();
  startPolling(onChanges(refreshPolicies));
}

// The collections for a drop-down, narrowed by the picker's search when there are many.
async function pickerGroups() {
  const q = new URLSearchParams({ start: 1, count: PICKER_PAGE });
  if (state.pickerQuery.trim()) q.set("q", state.pickerQuery.trim());
  return api("GET", tenantApi("/groups?" + q));
}

function groupSelect(id, groups, exclude) {
  const options = groups.filter((g) => !exclude.includes(g.id));
  return el("select", { id, class: "collection-select", "aria-label": id === "policy-collection" ? "User collection of the new policy" : "User collection to add" },
    options.length === 0
      ? el("option", { value: "", text: groups.length === 0 ? "No collections pushed yet" : "All collections added" })
      : [el("option", { value: "", text: "Choose a user collection…" }), ...options.map((g) => el("option", { value: g.id, text: g.name + " (" + g.members + ")" }))]);
}

async function refreshPolicies() {
  const area = $("#policies-area");
  if (!area) return;
  const [{ policies }, groups] = await Promise.all([api("GET", tenantApi("/policies")), pickerGroups()]);
  state.head = groups.head;
  // Keep what the admin is typing across a live refresh.
  const typed = $("#policy-name") ? $("#policy-name").value : "";
  const chosen = $("#policy-collection") ? $("#policy-collection").value : "";
  const pickerSearch = el("input", { type: "search", id: "collection-search", placeholder: "Filter collections", value: state.pickerQuery, "aria-label": "Filter the collection drop-downs" });
  let debounce = null;
  pickerSearch.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { state.pickerQuery = pickerSearch.value; refreshPolicies().then(() => $("#collection-search").focus()).catch(fail); }, 300);
  });
  const many = groups.total > groups.groups.length || state.pickerQuery.trim() !== "";
  const name = el("input", { type: "text", id: "policy-name", placeholder: "Policy name, e.g. Engineering VPN", value: typed, maxlength: 200, "aria-label": "Name of the new policy" });
  const select = groupSelect("policy-collection", groups.groups, []);
  select.value = chosen;
  const error = el("p", { class: "error", role: "alert", hidden: true });
  const create = el("form", { id: "create-policy", onsubmit: async (e) => {
    e.preventDefault();
    error.hidden = true;
    try {
      await api("POST", tenantApi("/policies"), { name: name.value, collections: select.value ? [select.value] : [] });
      name.value = ""; select.value = "";
      flash("Policy created.");
      await refreshPolicies();
    } catch (err) { error.textContent = err.message; error.hidden = false; }
  } },
    el("h3", { text: "New policy" }),
    el("div", { class: "row" }, el("div", { class: "grow" }, name), el("div", { class: "grow" }, select),
      el("button", { type: "submit", class: "primary", id: "create-policy-button", text: "Create policy" })),
    error);
  const save = async (p, collections) => {
    try { await api("PUT", tenantApi("/policies/" + p.id), { name: p.name, collections }); await refreshPolicies(); } catch (err) { fail(err); await refreshPolicies(); }
  };
  fill(area,
    many ? el("div", {}, pickerSearch, el("p", { class: "muted", text: `The drop-downs list ${groups.groups.length} of ${groups.total} collections; filter to find others.` })) : null,
    policies.length === 0 ? empty("No policies yet.", "Create one and attach user collections to it.") :
      el("div", { id: "policies" }, policies.map((p) => {
        const ids = p.collections.map((c) => c.id);
        const add = groupSelect("add-" + p.id, groups.groups, ids);
        return el("div", { class: "card policy", "data-id": p.id, "data-name": p.name },
          el("div", { class: "spread" }, el("h3", { class: "policy-name", text: p.name },
            p.value ? el("span", { class: "mono muted policy-value", title: "The Entitlement the IdP grants for this policy", text: " " + p.value }) : null),
            el("button", { type: "button", class: "danger", text: "Delete", "aria-label": "Delete the policy “" + p.name + "”", onclick: async () => {
              if (!confirm("Delete the policy “" + p.name + "”?")) return;
              try { await api("DELETE", tenantApi("/policies/" + p.id)); await refreshPolicies(); } catch (err) { fail(err); }
            } })),
          p.value ? el("p", { class: "idp-grants muted" }, el("span", { class: "badge origin idp", text: "IdP" }),
            p.idpGrants === null ? " Granted by the IdP to too many users to count here (User.entitlements)." :
              " Granted by the IdP to " + p.idpGrants + (p.idpGrants === 1 ? " user" : " users") + " (User.entitlements).") : null,
          el("div", { class: "collections" }, p.collections.length === 0 ? el("span", { class: "muted", text: p.value ? "No collections." : "No collections: applies to nobody." }) :
            p.collections.map((c) => el("span", { class: "chip" + (c.deleted ? " gone" : ""), "data-id": c.id },
              el("span", { class: "chip-name", text: (c.name || "(no name)") + (c.deleted ? " (deleted by the IdP)" : "") }),
              el("button", { type: "button", "aria-label": "Remove “" + (c.name || c.id) + "” from “" + p.name + "”", title: "Remove from the policy", text: "×", onclick: () => save(p, ids.filter((x) => x !== c.id)) })))),
          el("div", { class: "row" }, el("div", { class: "grow" }, add),
            el("button", { type: "button", class: "add-collection", text: "Add collection", "aria-label": "Add the chosen collection to “" + p.name + "”", onclick: () => { if (add.value) save(p, [...ids, add.value]); } })));
      })),
    create);
}

function renderCheck(result, r) {
  if (!r.found) {
    fill(result, el("p", { class: "notice bad", id: "check-decision", text: r.reason }));
    return;
  }
  const u = r.user;
  fill(result,
    el("p", { class: "notice " + (r.allowed ? "ok" : "bad"), id: "check-decision" },
      el("strong", { text: r.allowed ? "Login allowed. " : "Login refused. " }), r.reason),
    el("p", {}, el("strong", { text: u.userName }), u.displayName ? " (" + u.displayName + ") " : " ",
      el("span", { class: "badge " + (u.active ? "on" : "bad"), id: "check-active", text: u.active ? "active" : "inactive" })),
    el("h3", { text: "Groups (User.groups)" }),
    r.groups.length === 0 ? el("p", { class: "muted", text: "Member of no collection." }) :
      el("div", { id: "check-groups" }, r.groups.map((g) => el("span", { class: "chip", text: g.name || g.id }))),
    el("h3", { text: "Policies applying" }),
    r.policies.length === 0 ? el("p", { class: "muted", id: "check-policies", text: "None." }) :
      el("ul", { id: "check-policies" }, r.policies.map(policyLine)));
}

// One applying policy with where it comes from: a grant by the IdP (User.entitlements, e.g. from
// Okta Identity Governance) and/or the user's collections.
function policyLine(p) {
  const origins = p.origins || ["collection"];
  return el("li", { class: "applied", "data-id": p.id, "data-origins": origins.join(" ") },
    el("strong", { text: p.name }), " ",
    origins.includes("IdP") ? el("span", { class: "badge origin idp", title: "Granted by the IdP in User.entitlements (" + p.grant + ")", text: "IdP" }) : null,
    origins.includes("IdP") && p.via.length > 0 ? " " : null,
    p.via.length > 0 ? el("span", { class: "badge origin collection", text: "collection" }) : null,
    p.via.length > 0 ? el("span", { class: "via", text: " via " + p.via.map((g) => g.name || g.id).join(", ") }) : el("span", { class: "via", text: " granted by the IdP" }));
}

// ---- start ------------------------------------------------------------------------------------

function startLogin() {
  const form = $("#login-form");
  const error = $("#login-error");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    const button = $("#login-button");
    button.disabled = true;
    try {
      await api("POST", "/admin/login", { secret: $("#secret").value });
      // The console is served at this same URL now that the session cookie is set. A
      // location.replace to the same URL with a hash would only move to the fragment, not
      // load the page: reload it (keeping the hash, so #collections opens collections).
      location.reload();
    } catch (err) {
      error.textContent = err.status === 401 ? "Wrong admin secret. Check the server's start-up output." : err.message;
      error.hidden = false;
      $("#secret").select();
    } finally { button.disabled = false; }
  });
}

function startConsole() {
  $("#tenant-select").addEventListener("change", (e) => {
    if (!confirmLeaveToken()) { e.target.value = state.tenant || ""; return; }
    selectTenant(e.target.value); render();
  });
  $("#logout").addEventListener("click", async () => {
    if (!confirmLeaveToken()) return;
    try { await api("POST", "/admin/logout"); } catch (e) { /* reload anyway */ }
    leaving = true;
    location.reload();
  });
  // Closing or reloading the page with an uncopied token on screen: the browser asks.
  window.addEventListener("beforeunload", (e) => {
    if (!leaving && tokenUncopied()) { e.preventDefault(); e.returnValue = ""; }
  });
  $("#skip").addEventListener("click", () => {
    const first = $("#view").querySelector("a[href], button:not([disabled]), input, select");
    if (first) first.focus();
  });
  window.addEventListener("hashchange", route);
  route();
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "login") startLogin();
  else startConsole();
});
