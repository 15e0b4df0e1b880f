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
    throw new ApiError(0, "The server cannot be reached. Is it still running?");
  }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (r.status === 401 && path !== "/admin/login") {
    // The session expired: back to the login form.
    location.reload();
    throw new ApiError(401, "Logged out.");
  }
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

// ---- state ---------------------------------------------------------------------------------

const state = {
  view: "connections",
  tenants: [],
  tenant: null,          // the selected connection's id
  oneTime: null,         // {tenant, token}: the token just generated, shown once
  groupStart: 1, groupQuery: "", group: null, memberStart: 1,
  head: null,            // the change-feed position the collections on screen reflect
  pickerQuery: "",
};
const GROUP_PAGE = 25, MEMBER_PAGE = 50, PICKER_PAGE = 200;
let pollTimer = null;

function currentTenant() { return state.tenants.find((t) => t.id === state.tenant) || null; }

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
    state.group = null; state.groupStart = 1; state.groupQuery = ""; state.memberStart = 1;
    state.head = null; state.pickerQuery = "";
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

function setView(view) {
  if (!["connections", "collections", "policies"].includes(view)) view = "connections";
  if (state.view !== view && state.view === "connections") state.oneTime = null;
  state.view = view;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === view);
  render();
}

async function render() {
  const main = $("#view");
  stopPolling();
  try {
    if (state.view === "connections") await renderConnections(main);
    else if (state.view === "collections") await renderCollections(main);
    else await renderPolicies(main);
  } catch (e) {
    fill(main, el("div", { class: "card notice bad", text: e.message }));
  }
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
            onclick: () => { selectTenant(c.id); render(); },
          }, el("td", { text: c.name }), el("td", { class: "mono hide-narrow", text: c.id }),
             el("td", {}, el("span", { class: "badge " + (c.scimEnabled ? "on" : "off"), text: c.scimEnabled ? "on" : "off" }))))))),
    createConnectionForm());
  const details = t ? await connectionDetails(t) : el("div", { class: "card" }, empty("No connection selected.", "Create a connection to get its SCIM base URL and a bearer token."));
  fill(main, el("div", { class: "grid" }, list, details));
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

async function connectionDetails(t) {
  const { tokens } = await api("GET", tenantApi("/tokens"));
  const toggle = el("input", { type: "checkbox", id: "scim-switch", role: "switch", checked: t.scimEnabled, onchange: async (e) => {
    e.target.disabled = true;
    try {
      await api("PUT", tenantApi("/scim"), { enabled: e.target.checked });
      flash("SCIM provisioning " + (e.target.checked ? "switched on" : "switched off") + " for " + t.name + ".");
    } catch (err) { fail(err); }
    render();
  } });
  const active = tokens.filter((k) => k.status === "active").length;
  const label = el("input", { type: "text", id: "token-label", placeholder: "Label, e.g. Okta production", maxlength: 256 });
  const generate = el("button", { type: "button", class: "primary", id: "generate-token", text: "Generate bearer token", onclick: async () => {
    generate.disabled = true;
    try {
      const r = await api("POST", tenantApi("/tokens"), { label: label.value });
      state.oneTime = { tenant: t.id, token: r.token, label: r.label };
      render();
    } catch (err) { fail(err); generate.disabled = false; }
  } });
  let once = null;
  if (state.oneTime && state.oneTime.tenant === t.id) {
    once = el("div", { class: "notice warn token-once", id: "one-time-token" },
      el("strong", { text: "Your new bearer token (" + state.oneTime.label + ")" }),
      copyBox("new-token", state.oneTime.token, "copy-token"),
      el("p", { text: "Copy it now and paste it into the IdP (Okta: API Token; Entra: Secret Token). It will not be shown again: only its hash is kept." }),
      el("button", { type: "button", id: "dismiss-token", text: "I have copied it", onclick: () => { state.oneTime = null; render(); } }));
  }
  return el("div", { class: "card", id: "connection-details" },
    el("div", { class: "spread" },
      el("h2", { text: t.name }),
      el("label", { class: "switch", for: "scim-switch" }, toggle, el("span", { class: "track", "aria-hidden": "true" }), "SCIM Provisioning")),
    t.scimEnabled
      ? el("p", { class: "notice ok", id: "scim-status", text: "SCIM provisioning is on: the IdP can create, update and deactivate users and push groups with a valid token." })
      : el("p", { class: "notice info", id: "scim-status", text: "SCIM provisioning is off: every request of the IdP is refused (401), whatever token it carries. Tokens and data are kept." }),
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
          el("thead", {}, el("tr", {}, el("th", { text: "Label" }), el("th", { text: "Created" }), el("th", { text: "Last used" }), el("th", { text: "Status" }), el("th", {}))),
          el("tbody", {}, tokens.map((k) => el("tr", { "data-id": k.id },
            el("td", { class: "label", text: k.label }), el("td", {}, when(k.created)), el("td", { class: "last-used" }, when(k.lastUsed)),
            el("td", {}, el("span", { class: "badge " + (k.status === "active" ? "on" : "bad"), text: k.status })),
            el("td", { class: "num" }, k.status === "active" ? el("button", { type: "button", class: "danger revoke", text: "Revoke", onclick: async () => {
              const last = active === 1 && t.scimEnabled ? " It is the last active token: the IdP will be locked out." : "";
              if (!confirm("Revoke the token “" + k.label + "”? Requests with it are refused at once." + last)) return;
              try { await api("POST", tenantApi("/tokens/" + encodeURIComponent(k.id) + "/revoke")); flash("Token revoked."); render(); } catch (err) { fail(err); }
            } }) : null)))))));
}

// ---- user collections ---------------------------------------------------------------------

function needTenant(main, what) {
  fill(main, el("div", { class: "card" }, empty("No IdP connection yet.", "Create a connection first: " + what + " belong to a connection."),
    el("p", { class: "empty" }, el("a", { href: "#connections", text: "Go to IdP connections" }))));
}

async function renderCollections(main) {
  await loadTenants();
  const t = currentTenant();
  if (!t) return needTenant(main, "user collections");
  const search = el("input", { type: "search", id: "group-search", placeholder: "Filter by name", value: state.groupQuery, "aria-label": "Filter collections by name" });
  let debounce = null;
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { state.groupQuery = search.value; state.groupStart = 1; refreshGroups(); }, 250);
  });
  fill(main,
    !t.scimEnabled ? el("p", { class: "notice info", text: "SCIM provisioning is off for " + t.name + ": the IdP cannot push changes until it is switched on (IdP connections)." }) : null,
    el("div", { class: "grid" },
      el("div", { class: "card" },
        el("div", { class: "spread" }, el("h2", { text: "User collections" }), el("span", { class: "live", title: "Follows the change feed: no reload needed", text: "live" })),
        el("p", { class: "muted", text: "The groups " + t.name + " pushed, with their synced users." }),
        search,
        el("div", { id: "groups-area" })),
      el("div", { class: "card", id: "members-area" })));
  await refreshGroups();
  await refreshMembers();
  startPolling(async () => { await refreshGroups(); await refreshMembers(); });
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
          el("thead", {}, el("tr", {}, el("th", { text: "Collection" }), el("th", { class: "num", text: "Users" }), el("th", { text: "Last change" }))),
          el("tbody", {}, data.groups.map((g) => el("tr", {
            class: "clickable" + (g.id === state.group ? " selected" : ""), "data-id": g.id,
            onclick: () => { state.group = g.id; state.memberStart = 1; refreshGroups().catch(fail); refreshMembers().catch(fail); },
          }, el("td", { class: "name", text: g.name || "(no name)" }), el("td", { class: "num members", text: g.members }), el("td", {}, when(g.lastModified))))))),
    pager(state.groupStart, GROUP_PAGE, data.total, (s) => { state.groupStart = s; refreshGroups().catch(fail); }));
}

async function refreshMembers() {
  const area = $("#members-area");
  if (!area) return;
  if (!state.group) {
    fill(area, empty("Pick a collection", "to see its users."));
    return;
  }
  let data;
  try {
    data = await api("GET", tenantApi("/groups/" + encodeURIComponent(state.group) + "/members?" + new URLSearchParams({ start: state.memberStart, count: MEMBER_PAGE })));
  } catch (e) {
    if (e.status === 404) { state.group = null; fill(area, empty("This collection was deleted by the IdP.", "")); return; }
    throw e;
  }
  fill(area,
    el("h2", { id: "members-title", text: data.group.name || "(no name)" }),
    el("p", { class: "muted", text: data.total + (data.total === 1 ? " member" : " members") }),
    data.total === 0 ? empty("No members.", "The IdP has pushed this collection without users.") :
      el("div", { class: "scroll" }, el("table", { id: "members" },
        el("thead", {}, el("tr", {}, el("th", { text: "userName" }), el("th", { text: "Display name" }), el("th", { text: "Active" }))),
        el("tbody", {}, data.members.map((m) => el("tr", { "data-id": m.id },
          el("td", { class: "user-name", text: m.userName || (m.type === "Group" ? "(nested group)" : "—") }),
          el("td", { text: m.displayName || "" }),
          el("td", {}, m.active === null || m.active === undefined
            ? el("span", { class: "muted", text: "—" })
            : el("span", { class: "badge active " + (m.active ? "on" : "bad"), text: m.active ? "active" : "inactive" }))))))),
    pager(state.memberStart, MEMBER_PAGE, data.total, (s) => { state.memberStart = s; refreshMembers().catch(fail); }));
}

// Polls the change feed every two seconds; `onChange` runs when something was committed.
function startPolling(onChange) {
  stopPolling();
  const tenant = state.tenant;
  pollTimer = setInterval(async () => {
    if (document.hidden || state.head === null || tenant !== state.tenant) return;
    try {
      const r = await api("GET", tenantApi("/changes?after=" + state.head));
      if (r.changed) await onChange();
    } catch (e) { /* the next tick retries */ }
  }, 2000);
}

function stopPolling() { if (pollTimer) clearInterval(pollTimer); pollTimer = null; }

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
      el("p", { class: "muted", text: "The host's own rules: a policy applies to the users of the collections it names, at their next login." }),
      el("div", { id: "policies-area" })),
    el("div", { class: "card" },
      el("h2", { text: "Check login" }),
      el("p", { class: "muted", text: "What the host decides when this user logs in now, from the user's groups as the IdP last pushed them." }),
      el("label", { for: "check-username", text: "userName" }),
      check, result)));
  await refreshPolicies();
  startPolling(refreshPolicies);
}

// The collections for a drop-down, narrowed by the picker's search when there are many.
async function pickerGroups() {
  const q = new URLSearchParams({ start: 1, count: PICKER_PAGE });
  if (state.pickerQuery.trim()) q.set("q", state.pickerQuery.trim());
  return api("GET", tenantApi("/groups?" + q));
}

function groupSelect(id, groups, exclude) {
  const options = groups.filter((g) => !exclude.includes(g.id));
  return el("select", { id, class: "collection-select", "aria-label": "User collection" },
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
  const name = el("input", { type: "text", id: "policy-name", placeholder: "Policy name, e.g. Engineering VPN", value: typed, maxlength: 200 });
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
          el("div", { class: "spread" }, el("h3", { class: "policy-name", text: p.name }),
            el("button", { type: "button", class: "danger", text: "Delete", onclick: async () => {
              if (!confirm("Delete the policy “" + p.name + "”?")) return;
              try { await api("DELETE", tenantApi("/policies/" + p.id)); await refreshPolicies(); } catch (err) { fail(err); }
            } })),
          el("div", { class: "collections" }, p.collections.length === 0 ? el("span", { class: "muted", text: "No collections: applies to nobody." }) :
            p.collections.map((c) => el("span", { class: "chip" + (c.name === null ? " gone" : ""), "data-id": c.id },
              c.name === null ? "deleted by the IdP" : c.name,
              el("button", { type: "button", "aria-label": "Remove", title: "Remove", text: "×", onclick: () => save(p, ids.filter((x) => x !== c.id)) })))),
          el("div", { class: "row" }, el("div", { class: "grow" }, add),
            el("button", { type: "button", class: "add-collection", text: "Add collection", onclick: () => { if (add.value) save(p, [...ids, add.value]); } })));
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
      el("ul", { id: "check-policies" }, r.policies.map((p) => el("li", { class: "applied", "data-id": p.id },
        el("strong", { text: p.name }), " via ", p.via.map((g) => g.name || g.id).join(", ")))));
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
      location.replace("/admin" + location.hash);
    } catch (err) {
      error.textContent = err.status === 401 ? "Wrong admin secret. Check the server's start-up output." : err.message;
      error.hidden = false;
      $("#secret").select();
    } finally { button.disabled = false; }
  });
}

function startConsole() {
  $("#tenant-select").addEventListener("change", (e) => { selectTenant(e.target.value); render(); });
  $("#logout").addEventListener("click", async () => {
    try { await api("POST", "/admin/logout"); } catch (e) { /* reload anyway */ }
    location.reload();
  });
  window.addEventListener("hashchange", () => setView(location.hash.slice(1)));
  setView(location.hash.slice(1) || "connections");
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "login") startLogin();
  else startConsole();
});
