// A Kora HTTP hook in Node.js's standard library: validates and denormalises orders, and
// serves the `quote` call. Run: HOOK_SECRET=... PORT=8088 node hook.mjs (docs/interceptors.md).
//
// - before_mutation on orders/$id: an order needs a non-empty list of `items` (else the write
//   is refused, nothing is written); `by_user/<user>/<id>` is kept in step with the order's
//   `user` (added with the write, in the same commit, and removed from the previous user).
// - call `quote`: the price of a list of items.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const SECRET = process.env.HOOK_SECRET;
const PRICES = { tea: 3, cake: 5 };
const MAX_SKEW_SECONDS = 300;

/** Whether `Kora-Signature: t=<unix>,v1=<hex>` signs `body` with the shared secret. */
function signed(header = '', body) {
  const parts = Object.fromEntries(header.split(',').map((item) => item.split('=', 2)));
  const sent = Number(parts.t);
  if (!Number.isInteger(sent) || Math.abs(Date.now() / 1000 - sent) > MAX_SKEW_SECONDS) return false;
  const expected = createHmac('sha256', SECRET).update(`${sent}.`).update(body).digest('hex');
  const given = Buffer.from(parts.v1 ?? '');
  return given.length === expected.length && timingSafeEqual(given, Buffer.from(expected));
}

function beforeMutation(request) {
  const order = request.new_data;
  const id = request.captures.id;
  const old = request.data?.user;
  if (order === null) {
    return old ? { add: { delete: { by_user: { [old]: { [id]: 1 } } } } } : {};
  }
  if (!Array.isArray(order.items) || order.items.length === 0) {
    return { refuse: { code: 'validation_failed', message: 'an order needs items' } };
  }
  const user = order.user ?? request.context.user;
  if (!user) {
    return { refuse: { code: 'permission_denied', message: 'an order needs a user' } };
  }
  const mutation = { merge: { by_user: { [user]: { [id]: true } } } };
  if (old && old !== user) mutation.delete = { by_user: { [old]: { [id]: 1 } } };
  return { add: mutation };
}

function quote(args) {
  const unknown = (args.items ?? []).find((item) => !(item in PRICES));
  if (unknown !== undefined) {
    return { refuse: { code: 'bad_request', message: `no price for ${unknown}` } };
  }
  return { value: { total: args.items.reduce((sum, item) => sum + PRICES[item], 0) } };
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (!signed(req.headers['kora-signature'], body)) {
      res.writeHead(401).end('bad signature');
      return;
    }
    const request = JSON.parse(body);
    let answer = {};
    if (request.hook === 'before_mutation') answer = beforeMutation(request);
    else if (request.hook === 'call' && request.name === 'quote') answer = quote(request.args ?? {});
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer));
  });
});

server.listen(Number(process.env.PORT ?? 8088), '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
});
