// What readers see: the server's data for a query with pending writes laid over it, and
// which subscription can answer a query locally. Mirrors crates/kora-client/src/view.rs.

import {
  applyShared, clone, combine, compareKeys, isEmpty, isEmptyObject, isObject, restrictRange, segments,
  type Json, type JsonObject, type Mut,
} from "./mutation.js";

/** A path query: the value at `path`, children within [min, max], the first (last) `limit`. */
export interface Query {
  path: string;
  min?: string;
  max?: string;
  limit?: number;
  reverse?: boolean;
}

export interface QueryOptions {
  min?: string;
  max?: string;
  limit?: number;
  reverse?: boolean;
}

export function makeQuery(path: string, opts: QueryOptions = {}): Query {
  segments(path); // validates
  const q: Query = { path };
  if (opts.min !== undefined) q.min = String(opts.min);
  if (opts.max !== undefined) q.max = String(opts.max);
  if (opts.limit !== undefined) {
    if (!Number.isInteger(opts.limit) || opts.limit < 0) throw new TypeError("limit must be a non-negative integer");
    q.limit = opts.limit;
  }
  if (opts.reverse) q.reverse = true;
  return q;
}

/** The subscription name of a query in the protocol: its path, plus its window if any. */
export function queryName(q: Query): string {
  const w: string[] = [];
  if (q.min !== undefined) w.push(`min=${encodeURIComponent(q.min)}`);
  if (q.max !== undefined) w.push(`max=${encodeURIComponent(q.max)}`);
  if (q.limit !== undefined) w.push(`limit=${q.limit}`);
  if (q.reverse) w.push("reverse");
  return w.length ? `${q.path}?${w.join("&")}` : q.path;
}

const ranged = (q: Query) => q.min !== undefined || q.max !== undefined;

export function valueAt(root: Json | undefined, segs: string[]): Json | null {
  let node: Json | undefined = root;
  for (const s of segs) node = isObject(node) ? node[s] : undefined;
  return node === undefined ? null : node;
}

export function placeAt(segs: string[], value: Json | null): JsonObject {
  if (segs.length === 0) return isObject(value) ? value : {};
  const root: JsonObject = {};
  if (value === null) return root;
  let node = root;
  for (let i = 0; i < segs.length - 1; i++) node = node[segs[i]] = {};
  node[segs[segs.length - 1]] = value;
  return root;
}

/** The children of `value` the query's window selects: within [min, max], then `limit`. */
export function pick(value: Json | null, q: Query): Json | null {
  if (!isObject(value) || (!ranged(q) && q.limit === undefined)) {
    return isObject(value) && isEmptyObject(value) ? null : value;
  }
  let keys = Object.keys(value)
    .filter((k) => (q.min === undefined || compareKeys(k, q.min) >= 0) && (q.max === undefined || compareKeys(k, q.max) <= 0))
    .sort(compareKeys);
  if (q.limit !== undefined) keys = q.reverse ? keys.slice(Math.max(0, keys.length - q.limit)) : keys.slice(0, q.limit);
  if (keys.length === 0) return null;
  const out: JsonObject = {};
  for (const k of keys) out[k] = value[k];
  return out;
}

/**
 * `stored` (the server's value for `q`) with `pending` laid over it, then the window.
 * `stored` is not changed; the result shares what the writes did not touch with it, so it
 * must not be changed either. `pending` is one mutation: the pending writes combined in
 * stamp order (`combinePending`).
 */
export function overlay(stored: Json | null, q: Query, pending: Mut | null): Json | null {
  const segs = segments(q.path);
  const part = pending && restrictRange(pending, segs, q.min, q.max);
  if (!part || isEmpty(part)) return pick(stored, q);
  const root = applyShared(placeAt(segs, stored), part, new WeakSet());
  return pick(valueAt(root, segs), q);
}

/**
 * The pending writes as one mutation. Sorting by stamp first makes the sequential meaning
 * equal last-writer-wins: two tabs' queued writes show as the server will order them,
 * whichever was queued first.
 */
export function combinePending(writes: Iterable<{ stamp: string; mutation: Mut }>): Mut | null {
  const sorted = [...writes].sort((a, b) => (a.stamp < b.stamp ? -1 : a.stamp > b.stamp ? 1 : 0));
  let out: Mut | null = null;
  let last: string | undefined;
  for (const w of sorted) {
    if (w.stamp === last) continue; // the same stamped write twice changes nothing
    last = w.stamp;
    out = out ? combine(out, w.mutation) : { merge: clone(w.mutation.merge), delete: clone(w.mutation.delete) };
  }
  return out;
}

/** True when `m` changes anything a reader of `q` sees. */
export function touches(m: Mut, q: Query): boolean {
  return !isEmpty(restrictRange(m, segments(q.path), q.min, q.max));
}

/**
 * Whether a subscription to `sub` holds everything `q` asks for: the same query, or any
 * query at or inside an unbounded subscription's path (within its key range).
 */
export function covers(sub: Query, q: Query): boolean {
  const a = segments(sub.path);
  const b = segments(q.path);
  if (sub.path === q.path) {
    const same = sub.min === q.min && sub.max === q.max && sub.limit === q.limit && !!sub.reverse === !!q.reverse;
    return same || (!ranged(sub) && sub.limit === undefined);
  }
  if (sub.limit !== undefined || b.length <= a.length || a.some((s, i) => s !== b[i])) return false;
  const child = b[a.length];
  return (sub.min === undefined || compareKeys(child, sub.min) >= 0) && (sub.max === undefined || compareKeys(child, sub.max) <= 0);
}
