// The local database: queued writes and subscribed data, in IndexedDB when the browser has
// it (shared by every tab of the origin that opens the same `name`), else in memory.
//
// Object stores (IndexedDB database `kora:<name>`):
//   queue — stamped writes not yet acknowledged, keyed by stamp (so read back in stamp order)
//   subs  — per subscription: its query, the server's value and the last sequence applied
//   meta  — `origin`: this database's random 40-bit id and the next tab number

import type { Condition } from "./protocol.js";
import type { Json, Mut } from "./mutation.js";
import type { Query } from "./view.js";

export interface QueuedWrite {
  stamp: string;
  mutation: Mut;
  conditions?: Condition[];
}

export interface SavedSub {
  name: string;
  query: Query;
  seq: number;
  /** The server's store history `seq` belongs to (sent with it to resume). */
  history?: string;
  value: Json | null;
  /** When a tab last saved it (ms since the epoch): the least recently used copies go first. */
  used: number;
}

export interface LocalStore {
  /** A 64-bit origin no other tab of this database was or will be given (see below). */
  allocateOrigin(): Promise<bigint>;
  queued(): Promise<QueuedWrite[]>;
  enqueue(w: QueuedWrite): Promise<void>;
  /** Removes writes (settled by the server) in one transaction. */
  dequeueMany(stamps: string[]): Promise<void>;
  count(): Promise<number>;
  loadSub(name: string): Promise<SavedSub | undefined>;
  loadSubs(): Promise<SavedSub[]>;
  /**
   * Saves `s` unless a copy at a later sequence of the same history is already there
   * (another tab's; a copy of another history is the restored server's past), then
   * forgets the least recently used copies beyond `keep` (never `s` itself).
   */
  saveSub(s: SavedSub, keep: number): Promise<void>;
  deleteSub(name: string): Promise<void>;
  close(): void;
}

/** The names of the copies to forget so that `keep` remain: the least recently used, not `name`. */
export function evicted(all: SavedSub[], keep: number, name: string): string[] {
  const others = all.filter((s) => s.name !== name).sort((a, b) => (a.used ?? 0) - (b.used ?? 0));
  return others.slice(0, Math.max(0, others.length + 1 - Math.max(1, keep))).map((s) => s.name);
}

function randomBits(bits: number): bigint {
  const words = new Uint32Array(Math.ceil(bits / 32));
  crypto.getRandomValues(words);
  let v = 0n;
  for (const w of words) v = (v << 32n) | BigInt(w);
  return v & ((1n << BigInt(bits)) - 1n);
}

/** Everything in this tab's memory: nothing survives a reload. */
export class MemoryStore implements LocalStore {
  private queue = new Map<string, QueuedWrite>();
  private subs = new Map<string, SavedSub>();
  async allocateOrigin() { return randomBits(64); }
  async queued() { return [...this.queue.values()].sort((a, b) => (a.stamp < b.stamp ? -1 : 1)); }
  async enqueue(w: QueuedWrite) { this.queue.set(w.stamp, w); }
  async dequeueMany(stamps: string[]) { for (const s of stamps) this.queue.delete(s); }
  async count() { return this.queue.size; }
  async loadSub(name: string) { return this.subs.get(name); }
  async loadSubs() { return [...this.subs.values()]; }
  async saveSub(s: SavedSub, keep: number) {
    const old = this.subs.get(s.name);
    if (!newer(old, s)) this.subs.set(s.name, s);
    if (this.subs.size > keep) for (const n of evicted([...this.subs.values()], keep, s.name)) this.subs.delete(n);
  }
  async deleteSub(name: string) { this.subs.delete(name); }
  close() {}
}

function done(req: IDBRequest): Promise<any> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function finished(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
}

export class IdbStore implements LocalStore {
  private constructor(private readonly db: IDBDatabase) {}

  static async open(factory: IDBFactory, name: string): Promise<IdbStore> {
    const req = factory.open(`kora:${name}`, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore("queue", { keyPath: "stamp" });
      db.createObjectStore("subs", { keyPath: "name" });
      db.createObjectStore("meta");
    };
    const db: IDBDatabase = await done(req);
    // Another tab upgrading the schema must not wait for this one forever.
    db.onversionchange = () => db.close();
    return new IdbStore(db);
  }

  /**
   * A random 40-bit database id (chosen once) followed by a 24-bit tab number taken in a
   * read-write transaction, which IndexedDB runs one at a time across tabs: two tabs of one
   * database never get the same origin (until 16 million tabs have been opened, when the
   * numbers wrap), and two databases differ by their random ids.
   */
  async allocateOrigin(): Promise<bigint> {
    const tx = this.db.transaction("meta", "readwrite");
    const meta = tx.objectStore("meta");
    const now: { base: string; next: number } | undefined = await done(meta.get("origin"));
    const slot = now ?? { base: randomBits(40).toString(16), next: 0 };
    const origin = (BigInt("0x" + slot.base) << 24n) | BigInt(slot.next & 0xffffff);
    meta.put({ base: slot.base, next: (slot.next + 1) & 0xffffff }, "origin");
    await finished(tx);
    return origin;
  }

  private async run<T>(store: string, mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest | void): Promise<T> {
    const tx = this.db.transaction(store, mode);
    const req = f(tx.objectStore(store));
    const result = req ? await done(req) : undefined;
    await finished(tx);
    return result as T;
  }

  queued() { return this.run<QueuedWrite[]>("queue", "readonly", (s) => s.getAll()); }
  enqueue(w: QueuedWrite) { return this.run<void>("queue", "readwrite", (s) => s.put(w)); }
  dequeueMany(stamps: string[]) { return this.run<void>("queue", "readwrite", (s) => { for (const k of stamps) s.delete(k); }); }
  count() { return this.run<number>("queue", "readonly", (s) => s.count()); }
  loadSub(name: string) { return this.run<SavedSub | undefined>("subs", "readonly", (s) => s.get(name)); }
  loadSubs() { return this.run<SavedSub[]>("subs", "readonly", (s) => s.getAll()); }
  deleteSub(name: string) { return this.run<void>("subs", "readwrite", (s) => s.delete(name)); }

  async saveSub(sub: SavedSub, keep: number): Promise<void> {
    const tx = this.db.transaction("subs", "readwrite");
    const s = tx.objectStore("subs");
    const old: SavedSub | undefined = await done(s.get(sub.name));
    if (!newer(old, sub)) s.put(sub);
    // Counted in the same transaction, so tabs saving at once cannot both skip the eviction.
    if ((await done(s.count())) > keep) {
      for (const name of evicted(await done(s.getAll()), keep, sub.name)) s.delete(name);
    }
    await finished(tx);
  }

  close() { this.db.close(); }
}

/** True when `old` is a later copy than `s` of the same history. */
function newer(old: SavedSub | undefined, s: SavedSub): boolean {
  return old !== undefined && old.history === s.history && old.seq > s.seq;
}
