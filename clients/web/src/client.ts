// The client: `connect()` returns a `Kora` handle. See docs/web-client.md for the semantics;
// the short version:
//
// - Every write is stamped by this tab's hybrid logical clock when it is made, queued in the
//   local database and laid over what readers see at once; the promise settles on the
//   server's reply, and a refused write is removed from the queue (rolled back).
// - Subscriptions keep the server's value and the last sequence applied in the local
//   database, so a later subscription to the same query is served at once and resumed with
//   `since` (the server sends only the missed changes).
// - Tabs of one origin opening the same `name` share the database. One of them — the holder
//   of a Web Lock — sends the queue; the others learn about writes, acknowledgements and
//   refusals over a BroadcastChannel. Every tab keeps its own WebSocket for reads,
//   subscriptions and calls.

import type { AuthResult, Committed, Condition, ErrorBody, JsonValue, Push, QueryResult } from "./protocol.js";
import { KoraError, PERMANENT } from "./errors.js";
import { Link } from "./link.js";
import {
  applyShared, clone, combine, deleteMutation, fromWire, isEmptyObject, isObject, mergeMutation, segments, setMutation, toWire,
  type Json, type JsonObject, type Mut,
} from "./mutation.js";
import { Clock } from "./stamp.js";
import { IdbStore, MemoryStore, type LocalStore, type QueuedWrite } from "./store.js";
import {
  combinePending, covers, makeQuery, overlay, placeAt, queryName, touches, valueAt,
  type Query, type QueryOptions,
} from "./view.js";

export type Status = "online" | "offline";

export interface ConnectOptions {
  /** The server's origin, `http(s)://host:port`; default: the page's origin. */
  url?: string;
  /** The local database's name (IndexedDB `kora:<name>`); default `"kora"`. */
  name?: string;
  /** A JWT sent with every connection (`?token=`); change it with `auth()`. */
  token?: string | null;
  /** Keep the local database in IndexedDB (default: when the environment has it). */
  persist?: boolean;
  /** Reconnection waits: from `backoffMin` doubling to `backoffMax` ms (default 200 / 30,000). */
  backoffMin?: number;
  backoffMax?: number;
  /** A ping after this much silence (ms, default 15,000); three times it closes the link. */
  heartbeat?: number;
  /** Longest wait for a read's or a call's reply (ms, default 30,000). */
  requestTimeout?: number;
  /**
   * Subscriptions whose copies are kept in the local database (default 100): saving one more
   * forgets the least recently used. A forgotten copy costs only a full read when its query is
   * subscribed again.
   */
  maxSavedSubscriptions?: number;
  /** Attempts of `transaction()` before it fails with `conflict` (default 25). */
  transactionAttempts?: number;
  /** For environments without globals (tests under Node). */
  WebSocket?: typeof WebSocket;
  indexedDB?: IDBFactory;
}

export interface SubscribeOptions extends QueryOptions {
  /** Called when the server ends the subscription (e.g. the reader may no longer read it). */
  onError?: (error: KoraError) => void;
}

export interface TransactionResult {
  committed: boolean;
  /** The value written, or (not committed) the value the update function declined to change. */
  value: Json | null;
}

interface Sub {
  name: string;
  query: Query;
  segs: string[];
  /** The server's value (without pending writes); `null`: nothing there. */
  value: Json | null;
  /** Objects of `value` no reader has been given: changes may be made to them in place. */
  owned: WeakSet<object>;
  /** The last sequence applied; `null` until a value is known. */
  seq: number | null;
  /** The server's store history `seq` belongs to: sent with it to resume. */
  history: string | null;
  /** Caught up on the current connection. */
  live: boolean;
  /** The connection (epoch) this subscription was last requested on. */
  epoch: number;
  listeners: Set<(value: Json | null) => void>;
  onError: Set<(error: KoraError) => void>;
  loaded: Promise<void>;
}

type Message =
  | { t: "queued"; w: QueuedWrite }
  | { t: "done"; stamp: string; ok?: Committed; error?: ErrorBody };

/** Writes sent before their replies return (the server takes 64 per connection). */
const IN_FLIGHT = 64;
/** Subscription copies kept in the local database unless `maxSavedSubscriptions` says otherwise. */
export const DEFAULT_MAX_SAVED_SUBSCRIPTIONS = 100;
/** How long subscription data may wait in memory before it is saved. */
const SAVE_DELAY_MS = 200;
/** Least time between two calls of a subscription's listeners (a burst of changes, one call). */
const EMIT_INTERVAL_MS = 16;

export function connect(options: ConnectOptions = {}): Kora {
  return new Kora(options);
}

export class Kora {
  private store!: LocalStore;
  private clock!: Clock;
  private readonly link: Link;
  private readonly ready: Promise<void>;
  private readonly name: string;
  /** Every tab's writes not yet acknowledged, by stamp. */
  private readonly queue = new Map<string, QueuedWrite>();
  /** Writes another tab had acknowledged, shown until this tab's connection has caught up. */
  private readonly settling = new Map<string, QueuedWrite>();
  /** Stamps settled lately: a queue read racing with their settlement must not revive them. */
  private readonly settled = new Set<string>();
  private combined: Mut | null | undefined = undefined;
  private readonly mine = new Map<string, { resolve(c: Committed): void; reject(e: KoraError): void }>();
  private readonly inflight = new Set<string>();
  private readonly subs = new Map<string, Sub>();
  private readonly dirty = new Set<Sub>();
  private flushTimer?: ReturnType<typeof setTimeout>;
  private flushing?: Promise<void>;
  private flushAgain = false;
  private readonly finishing: { w: QueuedWrite; c: Committed | null; error: KoraError | null }[] = [];
  private readonly emitting = new Set<Sub>();
  private emitTimer?: ReturnType<typeof setTimeout>;
  private lastEmit = 0;
  private readonly statusListeners = new Set<(s: Status) => void>();
  private readonly expiredListeners = new Set<() => void>();
  private readonly waiters = new Set<() => void>();
  private channel: BroadcastChannel | null = null;
  private leader = false;
  private releaseLock?: () => void;
  private resumed = false;
  private epoch = 0;
  private closed = false;
  private readonly attempts: number;
  private readonly maxSaved: number;
  private readonly onOnline = () => this.link.hurry();
  // A page being left saves what it holds (IndexedDB finishes transactions begun now).
  private readonly onPageHide = () => this.flush().catch(() => {});

  constructor(options: ConnectOptions = {}) {
    const url = options.url ?? globalThis.location?.origin;
    if (!url) throw new TypeError("connect({ url }) needs the server's origin outside a page");
    this.name = options.name ?? "kora";
    this.attempts = options.transactionAttempts ?? 25;
    this.maxSaved = options.maxSavedSubscriptions ?? DEFAULT_MAX_SAVED_SUBSCRIPTIONS;
    if (!Number.isInteger(this.maxSaved) || this.maxSaved < 1) {
      throw new RangeError(`maxSavedSubscriptions must be a whole number from 1, not ${this.maxSaved}`);
    }
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (!WS) throw new TypeError("no WebSocket in this environment: pass connect({ WebSocket })");
    this.link = new Link(
      {
        url,
        token: options.token,
        backoffMin: options.backoffMin ?? 200,
        backoffMax: options.backoffMax ?? 30_000,
        heartbeat: options.heartbeat ?? 15_000,
        requestTimeout: options.requestTimeout ?? 30_000,
        WebSocket: WS,
      },
      { open: () => this.opened(), close: () => this.lost(), push: (p) => this.pushed(p) },
    );
    const idb = options.indexedDB ?? globalThis.indexedDB;
    const persist = options.persist ?? !!idb;
    this.ready = this.init(persist ? idb : undefined);
    // A failed start (IndexedDB refused, e.g. in a private window) surfaces on every call.
    this.ready.catch(() => {});
  }

  private async init(idb: IDBFactory | undefined): Promise<void> {
    this.store = idb ? await IdbStore.open(idb, this.name) : new MemoryStore();
    this.clock = new Clock(await this.store.allocateOrigin());
    if (idb && typeof BroadcastChannel !== "undefined") {
      // Before reading the queue, so that no write queued meanwhile goes unnoticed.
      this.channel = new BroadcastChannel(`kora:${this.name}`);
      this.channel.onmessage = (ev) => this.heard(ev.data as Message);
    }
    await this.loadQueue();
    const locks = idb ? (globalThis.navigator as Navigator | undefined)?.locks : undefined;
    if (locks) {
      locks.request(`kora:${this.name}:sender`, () => {
        if (this.closed) return;
        this.leader = true;
        // Writes whose message this tab missed before it held the lock are in the database.
        this.loadQueue().then(() => this.pump());
        return new Promise<void>((resolve) => (this.releaseLock = resolve));
      });
    } else {
      this.leader = true;
    }
    globalThis.addEventListener?.("online", this.onOnline);
    globalThis.addEventListener?.("pagehide", this.onPageHide);
    this.link.start();
  }

  private async loadQueue(): Promise<void> {
    let changed = false;
    for (const w of await this.store.queued()) {
      if (this.queue.has(w.stamp) || this.settled.has(w.stamp)) continue;
      this.queue.set(w.stamp, w);
      this.clock.observe(w.stamp);
      changed = true;
    }
    if (changed) this.pendingChanged(null);
  }

  // ---- writes ----------------------------------------------------------------------------

  /** Replaces the value at `path` (`null` deletes it). */
  set(path: string, value: JsonValue): Promise<Committed> {
    return this.ready.then(() => this.write(setMutation(path, value)));
  }

  /** Merges the members of `value` into `path`; a `null` member deletes that child. */
  merge(path: string, value: { [key: string]: JsonValue }): Promise<Committed> {
    return this.ready.then(() => this.write(mergeMutation(path, value as JsonObject)));
  }

  /** Deletes `path` and everything beneath it. */
  delete(path: string): Promise<Committed> {
    return this.ready.then(() => this.write(deleteMutation(path)));
  }

  /** A raw mutation (`{merge, delete}`, absolute paths), optionally on conditions. */
  mutate(mutation: { merge?: JsonObject; delete?: Mut["delete"] }, conditions?: Condition[]): Promise<Committed> {
    return this.ready.then(() => this.write(fromWire(mutation), conditions));
  }

  private write(mutation: Mut, conditions?: Condition[]): Promise<Committed> {
    if (this.closed) return Promise.reject(new KoraError("unavailable", "the client is closed"));
    const w: QueuedWrite = { stamp: this.clock.now(), mutation };
    if (conditions?.length) w.conditions = conditions;
    const result = new Promise<Committed>((resolve, reject) => this.mine.set(w.stamp, { resolve, reject }));
    // A stamp newer than every pending one goes last: extend the combined pending writes
    // instead of combining them all again (the clock has seen every pending stamp, so this
    // is the usual case).
    const combined = this.combined;
    const newest = [...this.queue.keys(), ...this.settling.keys()].every((s) => s < w.stamp);
    this.queue.set(w.stamp, w);
    this.pendingChanged(w.mutation, true); // the app's own write shows without the burst delay
    if (combined !== undefined && newest) this.combined = combined ? combine(combined, w.mutation) : w.mutation;
    this.store.enqueue(w).then(
      () => {
        this.post({ t: "queued", w });
        this.pump();
      },
      (e) => this.finish(w, null, new KoraError("unavailable", `the write could not be queued: ${e}`)),
    );
    return result;
  }

  /** Sends queued writes, oldest stamp first, if this tab is the sender and resumed. */
  private pump(): void {
    if (!this.leader || !this.resumed || this.closed) return;
    if (this.inflight.size >= IN_FLIGHT) return;
    const ready = [...this.queue.values()]
      .filter((w) => !this.inflight.has(w.stamp))
      .sort((a, b) => (a.stamp < b.stamp ? -1 : 1));
    for (const w of ready) {
      if (this.inflight.size >= IN_FLIGHT) break;
      this.inflight.add(w.stamp);
      const epoch = this.epoch;
      const req = { op: "mutate" as const, mutation: toWire(w.mutation), stamp: w.stamp, ...(w.conditions ? { conditions: w.conditions } : {}) };
      // No timeout: a write waits for its reply or for the connection's loss.
      this.link.request<Committed>(req, 0).then(
        (c) => this.finish(w, c, null),
        (e: KoraError) => {
          if (epoch !== this.epoch) return; // the connection was lost: sent again on the next
          if (PERMANENT.has(e.code)) return this.finish(w, null, e);
          // Refused for now (`unavailable`, `internal`): reconnect after a backoff, send again.
          this.inflight.delete(w.stamp);
          this.link.restart();
        },
      );
    }
  }

  /** The sender's end of a write: acknowledged (`c`) or refused for good (`error`). */
  private finish(w: QueuedWrite, c: Committed | null, error: KoraError | null): void {
    if (!this.queue.has(w.stamp)) return;
    this.queue.delete(w.stamp);
    this.inflight.delete(w.stamp);
    this.remember(w.stamp);
    if (c) this.clock.observe(c.stamp);
    // The server replies after the pushes of the write's commit, so the subscriptions already
    // hold its effect: dropping it from the overlay shows no flicker; a refusal rolls back.
    this.pendingChanged(w.mutation);
    // Removed from the database (and reported) by the next flush, after the subscriptions'
    // data is saved: a reload never finds the write gone from both. Writes acknowledged
    // meanwhile share that flush.
    this.finishing.push({ w, c, error });
    this.requestFlush(0);
    this.pump();
  }

  private settle(stamp: string, c: Committed | null, error: KoraError | null): void {
    const waiter = this.mine.get(stamp);
    this.mine.delete(stamp);
    if (waiter) {
      if (c) waiter.resolve(c);
      else waiter.reject(error!);
    }
    this.wake();
  }

  private remember(stamp: string): void {
    this.settled.add(stamp);
    if (this.settled.size > 10_000) this.settled.delete(this.settled.values().next().value!);
  }

  // ---- tabs ------------------------------------------------------------------------------

  private post(m: Message): void {
    try {
      this.channel?.postMessage(m);
    } catch {
      // Closed channel (the client is closing).
    }
  }

  private heard(m: Message): void {
    if (this.closed) return;
    if (m.t === "queued") {
      if (this.queue.has(m.w.stamp) || this.settled.has(m.w.stamp)) return;
      this.queue.set(m.w.stamp, m.w);
      this.clock.observe(m.w.stamp);
      this.pendingChanged(m.w.mutation);
      this.pump();
      return;
    }
    const w = this.queue.get(m.stamp);
    this.remember(m.stamp);
    if (w) {
      this.queue.delete(m.stamp);
      this.inflight.delete(m.stamp);
      if (m.ok) {
        this.clock.observe(m.ok.stamp);
        // This tab's subscriptions get the commit on its own connection, maybe later than the
        // sender's reply: keep showing the write until a ping here returns after it.
        this.settling.set(m.stamp, w);
        if (this.resumed) {
          const epoch = this.epoch;
          this.link.request({ op: "ping" }).then(
            () => epoch === this.epoch && this.settled_(m.stamp),
            () => {},
          );
        }
      }
      this.pendingChanged(w.mutation);
    }
    this.settle(m.stamp, m.ok ?? null, m.error ? KoraError.from(m.error) : null);
  }

  private settled_(stamp: string): void {
    const w = this.settling.get(stamp);
    if (!w) return;
    this.settling.delete(stamp);
    this.pendingChanged(w.mutation);
    this.wake();
  }

  // ---- the connection --------------------------------------------------------------------

  private opened(): void {
    const epoch = ++this.epoch;
    const subs = [...this.subs.values()];
    Promise.all(subs.map((s) => s.loaded))
      .then(() => {
        for (const s of subs) if (this.subs.get(s.name) === s) this.request(s);
        // Replies and pushes keep the order of the frames that caused them: this ping's reply
        // comes after every resumed subscription's replayed changes. No timeout: a replay of
        // many changes takes as long as it takes, and the heartbeat replaces a dead link.
        return this.link.request({ op: "ping" }, 0);
      })
      .then(() => {
        if (epoch !== this.epoch || this.closed) return;
        this.resumed = true;
        for (const s of this.subs.values()) if (s.epoch === epoch && s.seq !== null) s.live = true;
        const settling = [...this.settling.values()];
        this.settling.clear();
        for (const w of settling) this.pendingChanged(w.mutation);
        this.setStatus("online");
        this.pump();
        this.wake();
      })
      .catch(() => {
        // The connection was lost before it caught up: the next one starts over.
      });
  }

  private lost(): void {
    this.epoch++;
    this.resumed = false;
    this.inflight.clear();
    for (const s of this.subs.values()) s.live = false;
    this.setStatus("offline");
  }

  /** Subscribes `s` on the current connection, resuming from its sequence when known. */
  private request(s: Sub): void {
    if (s.epoch === this.epoch || !this.link.connected) return;
    const epoch = (s.epoch = this.epoch);
    const resume = s.seq;
    const since = resume !== null ? { since: resume, ...(s.history !== null ? { history: s.history } : {}) } : {};
    const path = { ...s.query, subscribe: true, sub: s.name, ...since };
    // No timeout, as for the resume's ping: a large value or replay may take long.
    this.link.request<QueryResult>({ op: "query", paths: [path] }, 0).then(
      (r) => {
        if (epoch !== this.epoch || this.subs.get(s.name) !== s) return;
        s.history = r.history ?? null;
        if (resume === null) {
          s.value = valueAt(r.value, s.segs);
          s.owned = new WeakSet();
          s.seq = r.seq;
          this.changed(s);
        }
        if (this.resumed) {
          s.live = true;
          this.wake();
        }
      },
      (e: KoraError) => {
        if (epoch !== this.epoch || e.code === "unavailable") return;
        this.end(s, e);
      },
    );
  }

  private pushed(p: Push): void {
    if (p.push === "auth_expired") {
      for (const f of this.expiredListeners) f();
      return;
    }
    const s = this.subs.get(p.sub);
    if (!s) return;
    if (p.push === "ended") return this.end(s, KoraError.from(p.error));
    if (p.push === "reset") {
      s.value = isObject(p.value) && isEmptyObject(p.value) ? null : (p.value ?? null);
      s.owned = new WeakSet();
      s.seq = p.seq;
    } else {
      if (s.seq !== null && p.seq <= s.seq) return; // already applied (a resume overlapping)
      this.clock.observe(p.stamp);
      const root = applyShared(placeAt(s.segs, s.value), fromWire(p.mutation), s.owned);
      // Below the root, a branch left empty was pruned on the way; only the root can be empty.
      const value = valueAt(root, s.segs);
      s.value = s.segs.length === 0 && isObject(value) && isEmptyObject(value) ? null : value;
      s.seq = p.seq;
    }
    this.changed(s);
  }

  private end(s: Sub, error: KoraError): void {
    this.subs.delete(s.name);
    this.dirty.delete(s);
    this.store.deleteSub(s.name).catch(() => {});
    for (const f of s.onError) f(error);
    this.wake();
  }

  // ---- subscriptions and reads -----------------------------------------------------------

  /**
   * Calls `callback` with the local view of the query (the server's data with pending writes
   * laid over it; `null` for nothing) now — when a saved copy exists or the client is
   * offline — and on every change. Returns a function that stops it.
   */
  subscribe(path: string, options: SubscribeOptions | ((value: Json | null) => void), callback?: (value: Json | null) => void): () => void {
    if (typeof options === "function") [callback, options] = [options, {}];
    if (typeof callback !== "function") throw new TypeError("subscribe(path, options, callback) needs a callback");
    const cb = callback;
    const query = makeQuery(path, options);
    const name = queryName(query);
    let s = this.subs.get(name);
    if (!s) {
      const sub: Sub = {
        name, query, segs: segments(path), value: null, owned: new WeakSet(), seq: null, history: null, live: false, epoch: -1,
        listeners: new Set(), onError: new Set(), loaded: Promise.resolve(),
      };
      sub.loaded = this.ready
        .then(() => this.store.loadSub(name))
        .then((saved) => {
          if (saved && sub.seq === null) {
            sub.value = saved.value;
            sub.seq = saved.seq;
            sub.history = saved.history ?? null;
          }
          if (this.resumed && this.subs.get(name) === sub) this.request(sub);
        })
        .catch(() => {});
      this.subs.set(name, sub);
      s = sub;
    }
    const sub = s;
    sub.listeners.add(cb);
    if (options.onError) sub.onError.add(options.onError);
    let stopped = false;
    sub.loaded.then(() => {
      if (stopped || this.closed || this.subs.get(name) !== sub) return;
      if (sub.seq !== null || !this.resumed) cb(this.handOut(sub));
    });
    return () => {
      if (stopped) return;
      stopped = true;
      sub.listeners.delete(cb);
      if (options.onError) sub.onError.delete(options.onError);
      if (sub.listeners.size > 0 || this.subs.get(name) !== sub) return;
      // The saved copy stays: subscribing again is served from it at once.
      this.subs.delete(name);
      this.flush().catch(() => {});
      if (this.link.connected) this.link.request({ op: "unsubscribe", sub: name }).catch(() => {});
      this.wake();
    };
  }

  /**
   * The local view of a query: from a subscription that holds it, else from the server when
   * connected, else from a saved copy; fails with `unavailable` when none can answer.
   */
  async get(path: string, options: QueryOptions = {}): Promise<Json | null> {
    await this.ready;
    const q = makeQuery(path, options);
    for (const s of this.subs.values()) {
      if (s.live && covers(s.query, q)) return clone(overlay(this.baseFor(s, q), q, this.pendingMut()));
    }
    if (this.link.connected) {
      try {
        const r = await this.link.request<QueryResult>({ op: "query", paths: [{ ...q }] });
        return clone(overlay(valueAt(r.value, segments(q.path)), q, this.pendingMut()));
      } catch (e) {
        if (!(e instanceof KoraError) || e.code !== "unavailable") throw e;
      }
    }
    const known = [...this.subs.values()].filter((s) => s.seq !== null);
    for (const s of known) if (covers(s.query, q)) return clone(overlay(this.baseFor(s, q), q, this.pendingMut()));
    for (const s of await this.store.loadSubs()) {
      if (covers(s.query, q)) return clone(overlay(this.baseFor({ ...s, segs: segments(s.query.path) }, q), q, this.pendingMut()));
    }
    throw new KoraError("unavailable", `offline, and no local copy holds ${JSON.stringify(path)}`);
  }

  private baseFor(s: { query: Query; segs: string[]; value: Json | null }, q: Query): Json | null {
    if (s.query.path === q.path) return s.value;
    return valueAt(placeAt(s.segs, s.value), segments(q.path));
  }

  /**
   * Reads the value at `path`, calls `update` with it and writes the result on condition that
   * the value is still the one read; on `conflict` runs `update` again on the value the server
   * reported. `update` returns the new value (`null` deletes) or `undefined` to abort.
   */
  async transaction(path: string, update: (current: Json | null) => Json | null | undefined): Promise<TransactionResult> {
    let current = await this.get(path).catch((e: KoraError) => {
      if (e.code === "unavailable" && !this.link.connected) return null; // checked on arrival
      throw e;
    });
    for (let attempt = 1; ; attempt++) {
      const next = update(clone(current));
      if (next === undefined) return { committed: false, value: current };
      try {
        await this.ready.then(() => this.write(setMutation(path, next), [{ path, equals: current }]));
        return { committed: true, value: next };
      } catch (e) {
        if (!(e instanceof KoraError) || e.code !== "conflict" || attempt >= this.attempts) throw e;
        const now = e.current?.find((c) => c.path === path);
        if (attempt > 3) await sleep(Math.random() * Math.min(250, 2 ** (attempt - 3)));
        current = now ? (now.value as Json | null) : await this.get(path);
      }
    }
  }

  /** Calls a server handler and waits for its reply (needs a connection). */
  async call(name: string, args?: JsonValue): Promise<JsonValue> {
    await this.ready;
    return this.link.request<JsonValue>({ op: "call", name, ...(args !== undefined ? { args } : {}) });
  }

  /** Sends to a handler without waiting for a reply (dropped while offline). */
  cast(name: string, args?: JsonValue): void {
    this.link.send({ op: "cast", name, ...(args !== undefined ? { args } : {}) });
  }

  /**
   * Replaces this client's identity (`null`: anonymous). Used for every later connection;
   * when connected, the server checks it now and refuses an invalid token with
   * `permission_denied` (the identity then stays as it was).
   */
  async auth(token: string | null): Promise<AuthResult | null> {
    await this.ready;
    if (this.link.connected) {
      const r = await this.link.request<AuthResult>({ op: "auth", ...(token ? { token } : {}) });
      this.link.token = token;
      return r;
    }
    this.link.token = token;
    return null;
  }

  /** How many writes of this database (every tab's) the server has not acknowledged. */
  async pending(): Promise<number> {
    await this.ready;
    return this.store.count();
  }

  /**
   * Resolves when the client is online, every subscription has caught up (and its callbacks
   * have been called with what it caught up to) and no write (of any tab) waits for the
   * server. Waits through offline periods instead of failing.
   */
  async synced(): Promise<void> {
    await this.ready;
    for (;;) {
      if (this.closed) throw new KoraError("unavailable", "the client is closed");
      const subsLive = [...this.subs.values()].every((s) => s.live);
      // Saved too: acknowledged writes out of the database, subscriptions' data in it.
      const saved = this.finishing.length === 0 && this.dirty.size === 0 && !this.flushing;
      // Shown too: callbacks are called in bursts, and a caller of `synced` reads what they got.
      const shown = this.emitting.size === 0;
      if (this.resumed && subsLive && this.queue.size === 0 && this.settling.size === 0 && saved && shown) return;
      if (this.dirty.size > 0) this.requestFlush(0);
      await new Promise<void>((resolve) => this.waiters.add(resolve));
    }
  }

  /** `"status"`: called now with the current status and on every change. Returns `off`. */
  on(event: "status", listener: (status: Status) => void): () => void;
  on(event: "auth_expired", listener: () => void): () => void;
  on(event: "status" | "auth_expired", listener: (status: Status) => void): () => void {
    if (event === "status") {
      this.statusListeners.add(listener);
      listener(this.status);
      return () => this.statusListeners.delete(listener);
    }
    if (event === "auth_expired") {
      const f = listener as () => void;
      this.expiredListeners.add(f);
      return () => this.expiredListeners.delete(f);
    }
    throw new TypeError(`unknown event ${JSON.stringify(event)}`);
  }

  get status(): Status {
    return this.resumed ? "online" : "offline";
  }

  /** Closes the connection and the local database; queued writes stay for the next time. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    globalThis.removeEventListener?.("online", this.onOnline);
    globalThis.removeEventListener?.("pagehide", this.onPageHide);
    await this.ready.catch(() => {});
    await this.flush().catch(() => {});
    this.link.close();
    this.releaseLock?.();
    this.channel?.close();
    this.store?.close();
    const closedError = new KoraError("unavailable", "the client was closed; the write stays queued");
    for (const w of this.mine.values()) w.reject(closedError);
    this.mine.clear();
    this.wake();
  }

  // ---- internals -------------------------------------------------------------------------

  private setStatus(s: Status): void {
    for (const f of this.statusListeners) f(s);
  }

  private wake(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const f of waiters) f();
  }

  private pendingMut(): Mut | null {
    if (this.combined === undefined) {
      this.combined = combinePending([...this.queue.values(), ...this.settling.values()]);
    }
    return this.combined;
  }

  /**
   * The local view of `s` for readers. It shares objects with `s.value`, which from now on
   * are changed only by copying (see `applyShared`), so what a reader holds never changes.
   */
  private handOut(s: Sub): Json | null {
    s.owned = new WeakSet();
    return overlay(s.value, s.query, this.pendingMut());
  }

  /** The pending writes changed by `m` (`null`: anything): show every subscription it touches. */
  private pendingChanged(m: Mut | null, now = false): void {
    this.combined = undefined;
    for (const s of this.subs.values()) if (!m || touches(m, s.query)) this.emit(s, now);
    this.wake();
  }

  /** The server's data of `s` changed: save it soon, show it. */
  private changed(s: Sub): void {
    this.dirty.add(s);
    this.requestFlush(SAVE_DELAY_MS);
    this.emit(s);
  }

  /** Runs `flush` within `delay` ms; one at a time, and again at once if asked meanwhile. */
  private requestFlush(delay: number): void {
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    if (this.flushTimer && delay > 0) return;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush().catch(() => {});
    }, delay);
  }

  /**
   * Saves changed subscriptions (the server's value and its sequence, whole), then removes
   * the writes the server has settled from the queue and tells every tab and waiter.
   */
  private async flush(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.flushing) return this.flushing;
    const run = async () => {
      const subs = [...this.dirty].filter((s) => s.seq !== null);
      this.dirty.clear();
      // Saving reads the value after an await: it must not change in place meanwhile.
      for (const s of subs) s.owned = new WeakSet();
      const done = this.finishing.splice(0);
      await Promise.all(
        subs.map((s) =>
          this.store.saveSub(
            { name: s.name, query: s.query, seq: s.seq!, ...(s.history !== null ? { history: s.history } : {}), value: s.value, used: Date.now() },
            this.maxSaved,
          ),
        ),
      ).catch(() => {});
      if (done.length) {
        // On failure the writes stay in the database and are sent again by the next sender:
        // harmless, a stamped write applied twice changes nothing.
        await this.store.dequeueMany(done.map((d) => d.w.stamp)).catch(() => {});
      }
      for (const { w, c, error } of done) {
        this.post(c ? { t: "done", stamp: w.stamp, ok: c } : { t: "done", stamp: w.stamp, error: error!.toBody() });
        this.settle(w.stamp, c, error);
      }
    };
    this.flushing = run();
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
      this.wake();
    }
    if (this.flushAgain) {
      this.flushAgain = false;
      this.requestFlush(this.finishing.length ? 0 : SAVE_DELAY_MS);
    }
  }

  /**
   * Calls the listeners of `s` soon, once for any number of changes in between; `now`: in
   * the next task, whatever the burst delay.
   */
  private emit(s: Sub, now = false): void {
    this.emitting.add(s);
    if (this.emitTimer && !now) return;
    if (this.emitTimer) clearTimeout(this.emitTimer);
    // Timers run between the frames of a burst (a resume replaying thousands of changes), so
    // a zero delay would not gather them: keep calls at least EMIT_INTERVAL_MS apart.
    const wait = now ? 0 : Math.max(0, this.lastEmit + EMIT_INTERVAL_MS - Date.now());
    this.emitTimer = setTimeout(() => {
      this.emitTimer = undefined;
      this.lastEmit = Date.now();
      const subs = [...this.emitting];
      this.emitting.clear();
      for (const sub of subs) {
        if (this.closed || this.subs.get(sub.name) !== sub) continue;
        if (sub.seq === null && this.resumed) continue; // nothing known yet: wait for the server
        const value = this.handOut(sub);
        for (const f of sub.listeners) f(value);
      }
      this.wake();
    }, wait);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
