"""A Kora HTTP hook in Python's standard library: validates and denormalises orders, and
serves the `quote` call. Run: HOOK_SECRET=... PORT=8088 python3 hook.py (docs/interceptors.md).

- before_mutation on orders/$id: an order needs a non-empty list of `items` (else the write
  is refused, nothing is written); `by_user/<user>/<id>` is kept in step with the order's
  `user` (added with the write, in the same commit, and removed from the previous user).
- call `quote`: the price of a list of items.
"""

import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["HOOK_SECRET"].encode()
PRICES = {"tea": 3, "cake": 5}
MAX_SKEW_SECONDS = 300


def signed(header, body):
    """Whether `Kora-Signature: t=<unix>,v1=<hex>` signs `body` with the shared secret."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        sent = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - sent) > MAX_SKEW_SECONDS:
        return False
    expected = hmac.new(SECRET, f"{sent}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def before_mutation(request):
    order = request["new_data"]
    order_id = request["captures"]["id"]
    if order is None:  # the order is deleted: drop its index entry
        old = (request["data"] or {}).get("user")
        return {"add": {"delete": {"by_user": {old: {order_id: 1}}}}} if old else {}
    items = order.get("items")
    if not isinstance(items, list) or not items:
        return {"refuse": {"code": "validation_failed", "message": "an order needs items"}}
    user = order.get("user") or request["context"]["user"]
    if not user:
        return {"refuse": {"code": "permission_denied", "message": "an order needs a user"}}
    mutation = {"merge": {"by_user": {user: {order_id: True}}}}
    old = (request["data"] or {}).get("user")
    if old and old != user:
        mutation["delete"] = {"by_user": {old: {order_id: 1}}}
    return {"add": mutation}


def quote(args):
    unknown = [item for item in args.get("items", []) if item not in PRICES]
    if unknown:
        return {"refuse": {"code": "bad_request", "message": f"no price for {unknown[0]}"}}
    return {"value": {"total": sum(PRICES[item] for item in args["items"])}}


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not signed(self.headers.get("Kora-Signature", ""), body):
            self.send_error(401, "bad signature")
            return
        request = json.loads(body)
        if request["hook"] == "before_mutation":
            answer = before_mutation(request)
        elif request["hook"] == "call" and request["name"] == "quote":
            answer = quote(request["args"] or {})
        else:
            answer = {}
        reply = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8088"))), Hook)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()
