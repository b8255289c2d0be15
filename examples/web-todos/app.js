// A todo list on Kora's web client. Everything works offline: adds, checks and deletes show
// at once, wait in IndexedDB (across reloads), and reach the server when it is back.

// The Kora server: ?kora=http://host:port, default the usual local one.
const KORA = new URLSearchParams(location.search).get("kora") ?? "http://127.0.0.1:4000";
const { connect } = await import(`${KORA}/v1/client.js`);

// The service worker keeps this page and the client cached, so a reload works offline too.
navigator.serviceWorker?.register(`sw.js?kora=${encodeURIComponent(KORA)}`);

const db = connect({ url: KORA, name: "web-todos" });
const $ = (id) => document.getElementById(id);

/** "online" or "offline", and how many writes wait for the server (every tab's). */
async function showStatus() {
  const pending = await db.pending();
  $("status").className = db.status;
  $("status").textContent = pending ? `${db.status} · ${pending} to send` : db.status;
}
db.on("status", showStatus);

db.subscribe("todos", {}, (todos) => {
  const list = $("list");
  list.replaceChildren();
  const entries = Object.entries(todos ?? {}).sort(([, a], [, b]) => (a.created ?? 0) - (b.created ?? 0));
  for (const [id, todo] of entries) {
    const li = document.createElement("li");
    li.className = todo.done ? "done" : "";
    const box = Object.assign(document.createElement("input"), { type: "checkbox", checked: !!todo.done });
    box.onchange = () => write(db.merge(`todos/${id}`, { done: box.checked }));
    const text = Object.assign(document.createElement("span"), { textContent: todo.text });
    const del = Object.assign(document.createElement("button"), { textContent: "×", title: "Delete" });
    del.onclick = () => write(db.delete(`todos/${id}`));
    li.append(box, text, del);
    list.append(li);
  }
  showStatus();
});

$("add").onsubmit = (ev) => {
  ev.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  $("text").value = "";
  // A time-ordered id made here: no round trip needed, even offline.
  const id = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  write(db.set(`todos/${id}`, { text, done: false, created: Date.now() }));
};

/** Shows a write's refusal (it has already been rolled back in the list). */
function write(promise) {
  $("error").textContent = "";
  promise.catch((e) => ($("error").textContent = `${e.code}: ${e.message}`)).finally(showStatus);
}
