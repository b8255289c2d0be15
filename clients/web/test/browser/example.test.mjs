// The todos example (examples/web-todos) works: its page (served from its own origin, importing the client from
// the server's /v1/client.js) adds, checks and deletes todos, also while the server is down.
import test, { after, before } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { clickIn, root, startKora, until, withBrowser } from "./harness.mjs";

const dir = join(root, "../../examples/web-todos");
const suite = withBrowser();
let site;
before(async () => {
  const types = { html: "text/html", js: "text/javascript" };
  site = createServer((req, res) => {
    const name = new URL(req.url, "http://x").pathname.slice(1) || "index.html";
    try {
      const body = readFileSync(join(dir, name));
      res.writeHead(200, { "content-type": types[name.split(".").pop()] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => site.listen(0, "127.0.0.1", r));
});
after(async () => {
  await new Promise((r) => site?.close(r));
});

test("the web-todos example adds, checks and deletes, online and offline", async () => {
  const kora = await startKora();
  try {
    const page = await suite.browser.newPage();
    page.on("pageerror", (e) => console.error("page error:", e.message));
    await page.goto(`http://127.0.0.1:${site.address().port}/?kora=${kora.url}`);
    await until("online", () => page.$eval("#status", (e) => e.textContent === "online"));
    const add = async (text) => {
      await page.type("#text", text);
      await clickIn(page, "#add button");
    };
    await add("find the Black Pearl");
    await until("the item to show", () => page.$$eval("li span", (s) => s.map((e) => e.textContent).join() === "find the Black Pearl"));
    await until("the server to have it", async () => Object.values((await kora.get("todos")) ?? {}).length === 1);

    await kora.stop();
    await until("offline", () => page.$eval("#status", (e) => e.textContent.startsWith("offline")));
    await add("keep working offline");
    await clickIn(page, "li input[type=checkbox]");
    await until("both items to show, the first checked", () =>
      page.$$eval("li", (lis) => lis.length === 2 && lis[0].className === "done"));
    await until("two writes waiting", () => page.$eval("#status", (e) => e.textContent === "offline · 2 to send"));

    await kora.start();
    await until("online, nothing waiting", () => page.$eval("#status", (e) => e.textContent === "online"));
    await until("the server to have both", async () => {
      const todos = Object.values((await kora.get("todos")) ?? {});
      return todos.length === 2 && todos.some((t) => t.text === "find the Black Pearl" && t.done);
    });
    await clickIn(page, "li button");
    await until("the delete to reach the server", async () => Object.values((await kora.get("todos")) ?? {}).length === 1);
    await page.close();
  } finally {
    await kora.close();
  }
});
