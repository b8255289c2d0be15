// One browser tab on the web client, driven by another program over stdin/stdout (one JSON
// command per line in, one JSON answer per line out), so that a test in another language —
// crates/kora-cli/tests/web_client.rs, with the Rust client — can interleave its own steps
// with the tab's. Commands:
//   {"cmd": "open", "url", "name"}        connect({url, name}) and subscribe to "doc"
//   {"cmd": "set" | "merge", "path", "value"} / {"cmd": "delete", "path"}   start a write
//   {"cmd": "status"}                     "online" | "offline"
//   {"cmd": "synced"}                     await db.synced()
//   {"cmd": "acks"}                       the stamps of the writes made, once all are acknowledged
//   {"cmd": "view"}                       the subscription's last value
//   {"cmd": "quit"}
// Answers: {"ok": value} or {"error": message}.
import { createInterface } from "node:readline";
import { launch, startApp } from "../test/browser/harness.mjs";

const app = await startApp();
const browser = await launch();
const page = await browser.newPage();
page.on("pageerror", (e) => console.error("page error:", e.message));
await page.goto(app.url);
await page.waitForFunction(() => window.loaded === true);

const commands = {
  open: ({ url, name }) =>
    page.evaluate((url, name) => {
      window.db = window.kora.connect({ url, name, backoffMin: 50, backoffMax: 400 });
      window.acks = [];
      window.view = undefined;
      db.subscribe("doc", {}, (v) => (window.view = v));
      return true;
    }, url, name),
  set: ({ path, value }) => page.evaluate((p, v) => (acks.push(db.set(p, v)), true), path, value),
  merge: ({ path, value }) => page.evaluate((p, v) => (acks.push(db.merge(p, v)), true), path, value),
  delete: ({ path }) => page.evaluate((p) => (acks.push(db.delete(p)), true), path),
  status: () => page.evaluate(() => db.status),
  synced: () => page.evaluate(() => db.synced().then(() => true)),
  acks: () => page.evaluate(() => Promise.all(acks).then((cs) => cs.map((c) => c.stamp))),
  view: () => page.evaluate(() => window.view ?? null),
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  if (command.cmd === "quit") break;
  try {
    const ok = await commands[command.cmd](command);
    process.stdout.write(JSON.stringify({ ok }) + "\n");
  } catch (e) {
    process.stdout.write(JSON.stringify({ error: String(e?.message ?? e) }) + "\n");
  }
}
await browser.close();
await app.close();
process.exit(0); // stdin may still be open: do not wait for it
