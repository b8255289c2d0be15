// Drives Google's SDK against Kora nodes started by someone else (crates/kora-cli/tests/
// counters.rs starts them on a shared store), and prints one JSON line with what happened.
//
//   node drive.mjs transactions <path> <clients per node> <each> <url>...
//       each client runs `each` runTransaction increments of <path>, one after another; the
//       clients are spread evenly over the nodes. Prints {"committed": n, "aborted": n,
//       "values": [every value a committed transaction wrote]}; "aborted" counts those the
//       SDK gave up on (`maxretry`).
//   node drive.mjs rewrite-and-put <path> <rewrites> <children> <url>...
//       one client rewrites the node at <path> by runTransaction (the node with its `title`
//       changed) while another, on the next node, sets <path>/c<i> = true for i = 1..children,
//       each acknowledged before the next. Prints {"rewrites": n, "acknowledged": [i...]}.

import { runTransaction, set } from '@firebase/database';

import { closeAllApps, firebaseApp, within } from './harness.mjs';

function server(url) {
  const { hostname, port } = new URL(url);
  return { host: hostname, port: Number(port) };
}

// A runTransaction's result; one the SDK gave up on (it rejects with `maxretry` after 25
// attempts lost to other writers) counts as not committed.
async function transaction(client, path, update, what) {
  try {
    return await within(runTransaction(client.ref(path), update), what, 120_000);
  } catch (err) {
    if (err?.message === 'maxretry') return { committed: false, snapshot: null };
    throw err;
  }
}

async function transactions(path, perNode, each, urls) {
  const clients = [];
  for (const url of urls) {
    for (let i = 0; i < perNode; i++) clients.push(firebaseApp(server(url), `tx-${clients.length}`));
  }
  const results = await Promise.all(
    clients.map(async (client) => {
      const out = [];
      for (let i = 0; i < each; i++) {
        out.push(await transaction(client, path, (v) => (v ?? 0) + 1, `${client.name} #${i}`));
      }
      return out;
    }),
  );
  const all = results.flat();
  const committed = all.filter((r) => r.committed);
  return {
    committed: committed.length,
    aborted: all.length - committed.length,
    values: committed.map((r) => r.snapshot.val()),
  };
}

async function rewriteAndPut(path, rewrites, children, urls) {
  const rewriter = firebaseApp(server(urls[0]), 'rewriter');
  const putter = firebaseApp(server(urls[1 % urls.length]), 'putter');
  await set(rewriter.ref(path), { title: 't0' });
  let done = 0;
  const rewriting = (async () => {
    for (let i = 1; i <= rewrites; i++) {
      const rewrite = (node) => ({ ...(node ?? {}), title: `t${i}` });
      const r = await transaction(rewriter, path, rewrite, `rewrite ${i}`);
      if (r.committed) done++;
    }
  })();
  const acknowledged = [];
  const putting = (async () => {
    for (let i = 1; i <= children; i++) {
      await within(set(putter.ref(`${path}/c${i}`), true), `put ${i}`);
      acknowledged.push(i);
      await new Promise((resolve) => setTimeout(resolve, 2)); // "every few milliseconds"
    }
  })();
  await Promise.all([rewriting, putting]);
  return { rewrites: done, acknowledged };
}

const [command, path, ...rest] = process.argv.slice(2);
let result;
if (command === 'transactions') {
  const [perNode, each, ...urls] = rest;
  result = await transactions(path, Number(perNode), Number(each), urls);
} else if (command === 'rewrite-and-put') {
  const [rewrites, children, ...urls] = rest;
  result = await rewriteAndPut(path, Number(rewrites), Number(children), urls);
} else {
  throw new Error(`unknown command ${command}: transactions | rewrite-and-put`);
}
console.log(JSON.stringify(result));
await within(closeAllApps(), 'closing the apps', 10_000);
process.exit(0);
