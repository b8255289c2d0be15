// Keeps the app (this directory) and the Kora client cached, so the page opens offline.
// Network first, so that a running server's updates are picked up; the cache when offline.
const CACHE = "web-todos-v1";
const KORA = new URL(location.href).searchParams.get("kora") ?? "http://127.0.0.1:4000";
const SHELL = ["./", "index.html", "app.js", `${KORA}/v1/client.js`];

self.addEventListener("install", (ev) => {
  ev.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (ev) => ev.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (ev) => {
  if (ev.request.method !== "GET") return;
  ev.respondWith(
    fetch(ev.request)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          caches.open(CACHE).then((c) => c.put(ev.request, copy));
        }
        return res;
      })
      .catch(() => caches.match(ev.request, { ignoreSearch: true }).then((hit) => hit ?? Response.error())),
  );
});
