"""Google's Python Admin SDK (firebase-admin, REST underneath) against a Kora server.

Run by 15-admin-python.test.mjs in one of two ways:

- FIREBASE_DATABASE_EMULATOR_HOST set to the server: the SDK's emulator mode, in which it
  authenticates as `owner` (accepted by Kora with `[firebase] mock_tokens = true`);
- KORA_URL (https://host:port) and KORA_ADMIN_SECRET: as in production, over TLS
  (REQUESTS_CA_BUNDLE trusting the server's CA), with Kora's admin secret as the SDK's
  credential.

Writes under the path given as the first argument: set, update, push, get, a query, ETag
transactions from concurrent threads, and a listener (the SDK's event stream). Exits
non-zero, saying what differed, when anything does.
"""

import sys
import threading

import os

import firebase_admin
import google.auth.credentials
from firebase_admin import credentials, db


class AdminSecret(credentials.Base):
    """Kora's admin secret as an Admin SDK credential: sent as the bearer token of every
    request, as a Google access token would be."""

    def __init__(self, secret):
        self._credential = _Token(secret)

    def get_credential(self):
        return self._credential


class _Token(google.auth.credentials.Credentials):
    def __init__(self, token):
        super().__init__()
        self.token = token

    def refresh(self, request):
        pass  # the secret does not expire


def app_for_this_run():
    secret = os.environ.get("KORA_ADMIN_SECRET")
    if secret:
        return firebase_admin.initialize_app(
            AdminSecret(secret),
            options={"databaseURL": os.environ["KORA_URL"], "projectId": "demo-kora"},
        )
    return firebase_admin.initialize_app(
        options={"databaseURL": "https://demo-kora.firebaseio.com", "projectId": "demo-kora"}
    )


def check(what, got, expected):
    if got != expected:
        sys.exit(f"{what}: got {got!r}, expected {expected!r}")
    print(f"ok: {what}", flush=True)


def main():
    base = sys.argv[1]
    app = app_for_this_run()
    root = db.reference(base, app=app)

    root.set({"name": "kora", "stars": 1})
    root.update({"stars": 2, "meta/by": "python"})
    pushed = root.child("log").push({"at": 1, "what": "created"})
    check(
        "set, update and push read back",
        root.get(),
        {"name": "kora", "stars": 2, "meta": {"by": "python"}, "log": {pushed.key: {"at": 1, "what": "created"}}},
    )

    scores = root.child("scores")
    scores.set({"a": {"s": 5}, "b": {"s": 1}, "c": {"s": 9}, "d": {"s": 7}})
    top = scores.order_by_child("s").limit_to_last(2).get()
    check("orderByChild + limitToLast, in order", list(top.items()), [("d", {"s": 7}), ("c", {"s": 9})])
    low = scores.order_by_child("s").end_at(5).get()
    check("orderByChild + endAt", list(low.keys()), ["b", "a"])

    value, etag = root.child("stars").get(etag=True)
    check("get with its ETag", value, 2)
    check("a set guarded by a current ETag", root.child("stars").set_if_unchanged(etag, 3)[0], True)
    check("a set guarded by a stale ETag is refused", root.child("stars").set_if_unchanged(etag, 4)[0], False)

    # Transactions from 4 threads, 10 increments each: exact.
    counter = root.child("counter")

    def increment():
        for _ in range(10):
            counter.transaction(lambda n: (n or 0) + 1)

    threads = [threading.Thread(target=increment) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check("40 concurrent transactional increments", counter.get(), 40)

    # A listener: its first event is the current value, then each change.
    events = []
    changed = threading.Condition()

    def heard(event):
        with changed:
            events.append((event.event_type, event.path, event.data))
            changed.notify_all()

    registration = root.child("live").listen(heard)
    try:
        def wait_for(count):
            with changed:
                if not changed.wait_for(lambda: len(events) >= count, timeout=15):
                    sys.exit(f"listener: {len(events)} events, expected {count}: {events!r}")

        wait_for(1)
        root.child("live").set({"n": 1})
        wait_for(2)
        root.child("live/n").set(2)
        wait_for(3)
        check("listener events", events, [("put", "/", None), ("put", "/", {"n": 1}), ("put", "/n", 2)])
    finally:
        # Closing a listener makes the SDK's stream thread read from the closed response and
        # raise (firebase-admin 7.7.0); that thread's end is not this program's concern.
        threading.excepthook = lambda args: None
        registration.close()
    firebase_admin.delete_app(app)


if __name__ == "__main__":
    main()
