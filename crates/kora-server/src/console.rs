//! The admin console: one page, served at `/`, that shows the tree live. It speaks the same
//! WebSocket protocol as any client (subscribe to a path, apply pushed changes).

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
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
  header { display: flex; gap: .5rem; align-items: center; margin-bottom: 1rem; }
  input { font: inherit; padding: .3rem .5rem; min-width: 20rem; }
  #status { margin-left: auto; color: #666; }
  #tree { font: 13px/1.5 ui-monospace, monospace; white-space: pre; background: #f6f6f6;
          padding: 1rem; border-radius: 6px; overflow: auto; }
  #log { font: 12px ui-monospace, monospace; color: #555; max-height: 12rem; overflow: auto; }
</style>
</head>
<body>
<header>
  <strong>Kora</strong>
  <input id="path" placeholder="path to watch (empty: everything)">
  <button id="watch">Watch</button>
  <span id="status">connecting…</span>
</header>
<div id="tree">{}</div>
<h4>Changes</h4>
<div id="log"></div>
<script>
let tree = {}, ws, watched = null, nextId = 1;
const $ = (id) => document.getElementById(id);
function place(root, path, value) {
  if (!path.length) return value;
  let node = root;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
    node = node[key];
  }
  node[path[path.length - 1]] = value;
  return root;
}
function removePath(node, path) {
  if (!path.length) { for (const k of Object.keys(node)) delete node[k]; return; }
  const [key, ...rest] = path;
  if (!rest.length) { delete node[key]; return; }
  if (typeof node[key] === "object" && node[key] !== null) {
    removePath(node[key], rest);
    if (!Object.keys(node[key]).length) delete node[key];
  }
}
function deletes(d, path, out) {
  if (d === 1) { out.push(path); return; }
  for (const [k, v] of Object.entries(d)) deletes(v, path.concat(k), out);
}
function mergeInto(dst, src) {
  for (const [k, v] of Object.entries(src)) {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      if (typeof dst[k] !== "object" || dst[k] === null || Array.isArray(dst[k])) dst[k] = {};
      mergeInto(dst[k], v);
      if (!Object.keys(dst[k]).length) delete dst[k];
    } else dst[k] = v;
  }
}
function apply(m) {
  const paths = []; deletes(m.delete, [], paths);
  for (const p of paths) removePath(tree, p);
  mergeInto(tree, m.merge);
}
function render() { $("tree").textContent = JSON.stringify(tree, null, 2); }
function log(text) {
  const line = document.createElement("div");
  line.textContent = new Date().toLocaleTimeString() + "  " + text;
  $("log").prepend(line);
}
function watch() {
  const path = $("path").value.trim();
  if (watched !== null) ws.send(JSON.stringify({op: "unsubscribe", id: nextId++, sub: "console"}));
  watched = path; tree = {};
  ws.send(JSON.stringify({op: "query", id: nextId++,
    paths: [{path, subscribe: true, sub: "console"}]}));
}
function connect() {
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/ws");
  ws.onopen = () => { $("status").textContent = "live"; watched = null; watch(); };
  ws.onclose = () => { $("status").textContent = "offline — reconnecting"; setTimeout(connect, 1000); };
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.result && msg.result.value !== undefined) { tree = msg.result.value; render(); }
    else if (msg.error) log("error: " + msg.error.code + ": " + msg.error.message);
    else if (msg.push === "change") { apply(msg.mutation); render(); log("#" + msg.seq + " " + JSON.stringify(msg.mutation)); }
    else if (msg.push === "reset") {
      tree = place({}, watched ? watched.split("/") : [], msg.value || {}); render(); log("#" + msg.seq + " reset");
    }
  };
}
$("watch").onclick = watch;
$("path").onkeydown = (e) => { if (e.key === "Enter") watch(); };
connect();
</script>
</body>
</html>
"##;
