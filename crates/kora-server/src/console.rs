//! The admin console: one page, served at `/`, built on the web client (`/v1/client.js`,
//! clients/web). It signs in with a token, browses the tree a page of children at a time
//! (each page is a subscription to a key window, so a path with 100,000 children costs one
//! page), edits, adds and deletes values, highlights live changes, and shows the server's
//! metrics. Signed in with the admin secret (`[auth] admin_secret`) it acts as the
//! administrator — past every rule — and lists the dead letters (`/v1/effects/dead`), each
//! with a retry and a drop button.

use axum::response::Html;

/// `GET /`.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Kora console</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem 2rem; color: #222; }
  header { display: flex; gap: .5rem; align-items: center; margin-bottom: 1rem; flex-wrap: wrap; }
  input { font: inherit; padding: .25rem .5rem; }
  #path { min-width: 18rem; }
  #status { margin-left: auto; color: #888; }
  #status.online { color: #2a7; }
  #who { color: #555; }
  main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(14rem, 1fr); gap: 2rem; }
  #crumbs a { cursor: pointer; color: #15c; }
  table { border-collapse: collapse; width: 100%; font: 13px/1.5 ui-monospace, monospace; }
  td { padding: .15rem .5rem; border-bottom: 1px solid #eee; vertical-align: top; }
  td.key { white-space: nowrap; }
  td.key a { cursor: pointer; color: #15c; }
  td.value { word-break: break-all; color: #333; }
  td.actions { white-space: nowrap; text-align: right; }
  td.actions button { font-size: 12px; }
  tr.changed td { animation: flash 2s ease-out; }
  @keyframes flash { from { background: #fe8; } to { background: transparent; } }
  #pager { margin: .5rem 0; display: flex; gap: .5rem; align-items: center; }
  #error { color: #c33; min-height: 1.4em; }
  #metrics td:last-child { text-align: right; }
  #metrics tr.bad td { color: #c33; font-weight: bold; }
  #log { font: 12px ui-monospace, monospace; color: #555; max-height: 14rem; overflow: auto; }
  #dead td { font: 12px ui-monospace, monospace; padding: .1rem .3rem; }
  #dead td.error { color: #c33; word-break: break-all; }
  form { display: flex; gap: .4rem; margin-top: .6rem; }
  footer { margin-top: 2rem; color: #888; font-size: 12px; }
</style>
</head>
<body>
<header>
  <strong>Kora</strong>
  <input id="path" placeholder="path (empty: the root)">
  <button id="go">Open</button>
  <input id="token" type="password" placeholder="token (JWT or admin secret)">
  <button id="signin">Sign in</button>
  <span id="who">anonymous</span>
  <span id="status">offline</span>
</header>
<main>
<section>
  <div id="crumbs"></div>
  <div id="error"></div>
  <table><tbody id="rows"></tbody></table>
  <div id="pager"><button id="prev">◀ previous</button><button id="next">next ▶</button><span id="range"></span></div>
  <form id="add"><input id="newkey" placeholder="key"><input id="newvalue" placeholder='JSON value, e.g. {"a": 1}'><button>Set</button></form>
</section>
<aside>
  <h4>Metrics</h4>
  <table id="metrics"></table>
  <div id="deadbox" hidden>
    <h4>Dead letters <span id="deadcount"></span></h4>
    <table id="dead"></table>
  </div>
  <h4>Changes</h4>
  <div id="log"></div>
</aside>
</main>
<footer>Endpoints: WebSocket <code>/v1/ws</code> (through the web client, <code>/v1/client.js</code>),
  REST <code>/v1/data/…</code>, <a href="/metrics">/metrics</a>, <a href="/healthz">/healthz</a></footer>
<script type="module">
import { connect } from "/v1/client.js";

const PAGE = 50;
const $ = (id) => document.getElementById(id);
const token = sessionStorage.getItem("kora-console-token");
// The console keeps nothing in the browser: an admin's data stays on the server.
const db = connect({ persist: false, token });
if (token) $("who").textContent = "signed in";

let path = "", cursor = null, stop = null, shown = new Map(), hasNext = false;

db.on("status", (s) => { $("status").textContent = s; $("status").className = s; });

const join = (...parts) => parts.filter((p) => p !== "").join("/");
const preview = (v) => {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return JSON.stringify(v);
  const n = Object.keys(v).length;
  return `{${n} ${n === 1 ? "child" : "children"}}`;
};
const byBytes = (a, b) => {
  const x = new TextEncoder().encode(a), y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
};
function fail(e) { $("error").textContent = e ? `${e.code ?? "error"}: ${e.message}` : ""; }
function log(text) {
  const line = document.createElement("div");
  line.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").prepend(line);
  while ($("log").childElementCount > 200) $("log").lastChild.remove();
}

/** Shows `at`, from the child after `from` (`null`: the first), or up to `before`. */
function open(at, from = null, before = null) {
  stop?.();
  path = at; cursor = { from, before }; shown = new Map(); fail(null);
  $("path").value = at;
  crumbs();
  // One key window: a subscription with min (or max, reversed) and a limit one past the page,
  // so the server sends PAGE+1 children and the changes inside that window only.
  const opts = before !== null ? { max: before, limit: PAGE + 2, reverse: true }
    : from !== null ? { min: from, limit: PAGE + 2 } : { limit: PAGE + 1 };
  stop = db.subscribe(at, { ...opts, onError: fail }, (value) => render(value));
}

function render(value) {
  const rows = $("rows");
  if (value !== null && (typeof value !== "object" || Array.isArray(value))) {
    rows.replaceChildren(row("(value)", value, path, false));
    $("range").textContent = ""; $("next").disabled = $("prev").disabled = true;
    return;
  }
  let keys = Object.keys(value ?? {}).sort(byBytes);
  if (cursor.before !== null) {
    keys = keys.filter((k) => k !== cursor.before);
    hasNext = true;
    keys = keys.slice(Math.max(0, keys.length - PAGE));
  } else {
    if (cursor.from !== null) keys = keys.filter((k) => k !== cursor.from);
    hasNext = keys.length > PAGE;
    keys = keys.slice(0, PAGE);
  }
  const first = shown.size === 0;
  const changed = [];
  const next = new Map(keys.map((k) => [k, JSON.stringify(value[k])]));
  rows.replaceChildren(...keys.map((k) => {
    const tr = row(k, value[k], join(path, k), true);
    if (!first && shown.get(k) !== next.get(k)) { tr.className = "changed"; changed.push(k); }
    return tr;
  }));
  for (const k of shown.keys()) if (!next.has(k) && !first) changed.push(`${k} (gone)`);
  if (changed.length) log(`${path || "/"}: ${changed.join(", ")}`);
  shown = next;
  $("range").textContent = keys.length ? `${keys[0]} … ${keys[keys.length - 1]}` : "(nothing here)";
  $("next").disabled = !hasNext;
  $("prev").disabled = cursor.from === null && cursor.before === null;
}

function row(key, value, full, isChild) {
  const tr = document.createElement("tr");
  const k = document.createElement("td"); k.className = "key";
  const branch = value !== null && typeof value === "object" && !Array.isArray(value);
  if (isChild && branch) {
    const a = document.createElement("a"); a.textContent = key; a.onclick = () => open(full);
    k.append(a);
  } else k.textContent = key;
  const v = document.createElement("td"); v.className = "value"; v.textContent = preview(value);
  const actions = document.createElement("td"); actions.className = "actions";
  const edit = document.createElement("button"); edit.textContent = "edit";
  edit.onclick = () => {
    const input = document.createElement("input");
    input.value = JSON.stringify(value); input.style.width = "100%";
    input.onkeydown = (e) => {
      if (e.key === "Escape") return v.replaceChildren(preview(value));
      if (e.key !== "Enter") return;
      let parsed;
      try { parsed = JSON.parse(input.value); } catch (err) { return fail({ code: "bad_request", message: `not JSON: ${err.message}` }); }
      db.set(full, parsed).catch(fail);
    };
    v.replaceChildren(input); input.focus();
  };
  const del = document.createElement("button"); del.textContent = "delete";
  del.onclick = () => { if (confirm(`Delete ${full} and everything beneath it?`)) db.delete(full).catch(fail); };
  actions.append(edit, del);
  tr.append(k, v, actions);
  return tr;
}

function crumbs() {
  const c = $("crumbs"); c.replaceChildren();
  const parts = path === "" ? [] : path.split("/");
  const root = document.createElement("a"); root.textContent = "(root)"; root.onclick = () => open("");
  c.append(root);
  parts.forEach((p, i) => {
    const a = document.createElement("a"); a.textContent = p; a.onclick = () => open(parts.slice(0, i + 1).join("/"));
    c.append(" / ", a);
  });
}

async function metrics() {
  try {
    const text = await (await fetch("/metrics")).text();
    // `kora_<family>{<label>="<value>"} <number>`: families with an outcome or direction label
    // show one row per label value ("writes committed", "effects dead").
    const families = ["connections", "subscriptions", "writes_total", "queries_total", "deliveries_total",
      "delivered_seq", "effects_total"];
    const rows = [];
    for (const line of text.split("\n")) {
      const m = /^kora_([a-z_]+?)(?:\{[a-z_]+="([^"]*)"\})? ([0-9.e+-]+)$/.exec(line);
      if (!m || !families.includes(m[1])) continue;
      const name = m[1].replace(/_total$/, "").replaceAll("_", " ") + (m[2] ? ` ${m[2]}` : "");
      rows.push([name, m[3], m[1] === "effects_total" && m[2] === "dead" && Number(m[3]) > 0]);
    }
    $("metrics").replaceChildren(...rows.map(([name, value, bad]) => {
      const tr = document.createElement("tr");
      if (bad) tr.className = "bad";
      tr.innerHTML = "<td></td><td></td>";
      tr.firstChild.textContent = name === "effects dead" ? "effects dead-lettered" : name;
      tr.lastChild.textContent = value;
      return tr;
    }));
  } catch { /* offline: keep the last figures */ }
}

/** Request options presenting `t` as a bearer token. */
const asAdmin = (t) => ({ headers: { authorization: `Bearer ${t}` } });

/** Lists the dead letters when the token is the admin secret (the endpoint says whether it is). */
let notAdmin = false;
async function deadLetters() {
  if (!token || notAdmin) return;
  let body;
  try {
    const r = await fetch("/v1/effects/dead?limit=50", asAdmin(token));
    // Refused: a user's token. Asking again every few seconds would only be refused again.
    if (r.status === 403) { notAdmin = true; return; }
    if (!r.ok) { $("deadbox").hidden = true; return; }
    body = await r.json();
  } catch { return; /* offline: keep the last list */ }
  $("deadbox").hidden = false;
  $("who").textContent = "signed in as administrator";
  $("deadcount").textContent = `(${body.dead} dead, ${body.pending} pending)`;
  $("dead").replaceChildren(...body.effects.map((e) => {
    const tr = document.createElement("tr");
    tr.dataset.id = e.id;
    const cells = [`#${e.id}`, e.kind, `${e.attempts}×`, e.last_error ?? ""].map((text, i) => {
      const td = document.createElement("td"); td.textContent = text;
      if (i === 3) { td.className = "error"; td.title = JSON.stringify(e.payload); }
      return td;
    });
    const actions = document.createElement("td"); actions.className = "actions";
    for (const [label, method, url] of [["retry", "POST", `/v1/effects/dead/${e.id}/retry`], ["drop", "DELETE", `/v1/effects/dead/${e.id}`]]) {
      const b = document.createElement("button"); b.textContent = label;
      b.onclick = async () => {
        const r = await fetch(url, { method, ...asAdmin(token) });
        if (!r.ok) fail((await r.json()).error);
        deadLetters();
      };
      actions.append(b);
    }
    tr.append(...cells, actions);
    return tr;
  }));
}

$("go").onclick = () => open($("path").value.trim().replace(/^\/+|\/+$/g, ""));
$("path").onkeydown = (e) => { if (e.key === "Enter") $("go").onclick(); };
$("next").onclick = () => { const keys = [...shown.keys()]; if (keys.length) open(path, keys[keys.length - 1]); };
$("prev").onclick = () => { const keys = [...shown.keys()]; if (keys.length) open(path, null, keys[0]); };
$("signin").onclick = async () => {
  const t = $("token").value.trim() || null;
  // The admin secret is taken only when a connection starts: keep it and connect again.
  if (t && (await fetch("/v1/effects/dead?limit=1", asAdmin(t)).catch(() => null))?.ok) {
    sessionStorage.setItem("kora-console-token", t);
    return location.reload();
  }
  try {
    const r = await db.auth(t);
    if (t) sessionStorage.setItem("kora-console-token", t); else sessionStorage.removeItem("kora-console-token");
    $("who").textContent = t ? `signed in as ${r?.auth?.sub ?? "?"}` : "anonymous";
    open(path, cursor?.from ?? null, cursor?.before ?? null);
  } catch (e) { fail(e); }
};
$("add").onsubmit = (e) => {
  e.preventDefault();
  const key = $("newkey").value.trim();
  let value;
  try { value = JSON.parse($("newvalue").value); } catch (err) { return fail({ code: "bad_request", message: `not JSON: ${err.message}` }); }
  if (!key) return fail({ code: "invalid_path", message: "a key is needed" });
  db.set(join(path, key), value).then(() => { $("newkey").value = ""; $("newvalue").value = ""; }, fail);
};

open(new URLSearchParams(location.search).get("path") ?? "");
metrics();
deadLetters();
setInterval(() => { metrics(); deadLetters(); }, 5000);
</script>
</body>
</html>
"##;
