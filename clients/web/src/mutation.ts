// Mutations over plain JSON trees, with kora-core's meaning (crates/kora-core/src/mutation):
// `{merge, delete}`, deletes first, then merges; `combine(a, b)` equals applying a, then b;
// `restrictRange` is the part a reader of one path (and key range) sees. The Riptide vectors
// in /work/shared/conformance (test/data) check `combine`; test/unit/mutation.test.mjs checks
// `combine` against sequential application on random mutations.

import type { DeleteTree, JsonValue, Mutation } from "./protocol.js";
import { KoraError } from "./errors.js";

export type Json = JsonValue;
export type JsonObject = { [key: string]: JsonValue };
/** `1` deletes the path it stands at; an object lists deletes further down. */
export type Del = DeleteTree;

/** A mutation in the form this client works with: both members always present. */
export interface Mut {
  merge: JsonObject;
  delete: Del;
}

export const isObject = (v: unknown): v is JsonObject =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The segments of a `/`-separated path; `""` is the root. */
export function segments(path: string): string[] {
  if (typeof path !== "string") throw new KoraError("invalid_path", "a path is a string");
  if (path === "") return [];
  const parts = path.split("/");
  if (parts.some((s) => s === "")) {
    throw new KoraError("invalid_path", `empty segment in path ${JSON.stringify(path)}`);
  }
  return parts;
}

/** A mutation as sent on the wire; `null` members of `merge` become deletes (as on the server). */
export function fromWire(m: Mutation): Mut {
  const holder = { d: clone(m.delete ?? {}) as Del };
  const merge = nullsToDeletes((m.merge as JsonObject) ?? {}, [], holder);
  return { merge, delete: holder.d };
}

function nullsToDeletes(map: JsonObject, prefix: string[], del: { d: Del }): JsonObject {
  let out = map;
  for (const [k, v] of Object.entries(map)) {
    if (v === null) {
      if (out === map) out = { ...map };
      delete out[k];
      del.d = insertDelete(del.d, [...prefix, k]);
    } else if (isObject(v)) {
      prefix.push(k);
      const sub = nullsToDeletes(v, prefix, del);
      prefix.pop();
      if (sub !== v) {
        if (out === map) out = { ...map };
        out[k] = sub;
      }
    }
  }
  return out;
}

export function toWire(m: Mut): Mutation {
  return { merge: m.merge, delete: m.delete };
}

export function clone<T>(v: T): T {
  return v === null || typeof v !== "object" ? v : structuredClone(v);
}

/** `value` without `null`s (JSON `null` is never stored; in a merge it means delete). */
function strip(value: Json): Json | undefined {
  if (value === null) return undefined;
  if (Array.isArray(value)) return value.map((v) => (v === null ? null : strip(v) ?? null));
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) {
    const s = strip(v as Json);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

function nest<T>(segs: string[], leaf: T): T | { [k: string]: unknown } {
  let out: unknown = leaf;
  for (let i = segs.length - 1; i >= 0; i--) out = { [segs[i]]: out };
  return out as T;
}

/** Replaces whatever is at `path` with `value` (`null`: deletes it). */
export function setMutation(path: string, value: Json): Mut {
  const segs = segments(path);
  const stripped = strip(value);
  const del = nest(segs, 1) as Del;
  if (stripped === undefined) return { merge: {}, delete: del };
  if (segs.length === 0) {
    if (!isObject(stripped)) throw new KoraError("bad_request", "the root can only be set to an object");
    return { merge: stripped, delete: 1 };
  }
  return { merge: nest(segs, stripped) as JsonObject, delete: del };
}

/** Merges the members of `value` into `path`; a `null` member deletes that child. */
export function mergeMutation(path: string, value: JsonObject): Mut {
  const segs = segments(path);
  if (!isObject(value)) throw new KoraError("bad_request", "merge takes an object of members");
  const merge: JsonObject = {};
  const dels: { [k: string]: Del } = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === "" || k.includes("/")) throw new KoraError("invalid_path", `invalid key ${JSON.stringify(k)}`);
    const s = strip(v as Json);
    if (s === undefined) dels[k] = 1;
    else merge[k] = s;
  }
  return {
    merge: segs.length ? (nest(segs, merge) as JsonObject) : merge,
    delete: Object.keys(dels).length ? (nest(segs, dels) as Del) : {},
  };
}

export function deleteMutation(path: string): Mut {
  return { merge: {}, delete: nest(segments(path), 1) as Del };
}

export function isEmpty(m: Mut): boolean {
  return isEmptyObject(m.merge) && isNothing(m.delete);
}

const isNothing = (d: Del) => d !== 1 && isEmptyObject(d);

/** Calls `f` with the path of every `1` in a delete tree. */
export function forEachDelete(d: Del, f: (path: string[]) => void, prefix: string[] = []): void {
  if (d === 1) return f(prefix.slice());
  for (const [k, sub] of Object.entries(d)) {
    prefix.push(k);
    forEachDelete(sub as Del, f, prefix);
    prefix.pop();
  }
}

/** `d` with `path` deleted too (a path beneath a deleted one adds nothing). */
function insertDelete(d: Del, path: string[]): Del {
  if (d === 1) return 1;
  if (path.length === 0) return 1;
  let node = d as { [k: string]: Del };
  for (let i = 0; i < path.length - 1; i++) {
    const child = node[path[i]];
    if (child === 1) return d;
    if (child === undefined) node = node[path[i]] = {};
    else node = child as { [k: string]: Del };
  }
  node[path[path.length - 1]] = 1;
  return d;
}

function union(a: Del, b: Del): Del {
  if (a === 1 || b === 1) return 1;
  for (const [k, sub] of Object.entries(b)) {
    a[k] = k in a ? union(a[k] as Del, sub as Del) : clone(sub as Del);
  }
  return a;
}

/** True when `o` has no members (without listing them: objects here can be large). */
export function isEmptyObject(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

/** Applies `m` to `root` (changing it) and returns it; branches left empty disappear. */
export function applyTo(root: JsonObject, m: Mut): JsonObject {
  return applyWith(root, m, (o) => o);
}

/**
 * Applies `m` to `root` changing only the objects in `owned`: any other object on a changed
 * path is copied first (and the copy added to `owned`). Returns the new root; what was
 * shared before is left as it was, so values handed to readers never change under them,
 * and a burst of changes between two hand-outs copies each object once.
 */
export function applyShared(root: JsonObject, m: Mut, owned: WeakSet<object>): JsonObject {
  return applyWith(root, m, (o) => {
    if (owned.has(o)) return o;
    const copy = { ...o };
    owned.add(copy);
    return copy;
  });
}

type Own = (o: JsonObject) => JsonObject;

function applyWith(root: JsonObject, m: Mut, own: Own): JsonObject {
  let top = own(root);
  if (m.delete === 1) {
    if (top === root) for (const k in top) delete top[k];
    else top = own({});
  } else {
    forEachDelete(m.delete, (path) => remove(top, path, 0, own));
  }
  mergeValues(top, m.merge, own);
  return top;
}

/**
 * Removes `path` beneath `map` (already owned), pruning branches left empty. Returns whether
 * it removed a member of `map`: only then can `map` have become empty, and only then is it
 * looked at — counting the members of a large object is what a change must not cost.
 */
function remove(map: JsonObject, path: string[], i: number, own: Own): boolean {
  const key = path[i];
  if (!(key in map)) return false;
  if (i === path.length - 1) {
    delete map[key];
    return true;
  }
  const child = map[key];
  if (!isObject(child)) return false;
  const mine = (map[key] = own(child));
  if (remove(mine, path, i + 1, own) && isEmptyObject(mine)) {
    delete map[key];
    return true;
  }
  return false;
}

/**
 * Merges `src` into `dst` (already owned): a branch replaces a leaf, a leaf replaces
 * anything, a branch left empty disappears. Leaves are taken from the mutation as they are:
 * mutations are never changed once made. Returns whether a member `dst` had is gone (a leaf
 * replaced by a branch that ended empty): only then can `dst` have become empty.
 */
function mergeValues(dst: JsonObject, src: JsonObject, own: Own): boolean {
  let lost = false;
  for (const key in src) {
    const value = src[key];
    if (!isObject(value)) {
      dst[key] = value;
      continue;
    }
    const old = dst[key];
    const fresh = !isObject(old);
    const slot = (dst[key] = fresh ? own({}) : own(old));
    const shrank = mergeValues(slot, value, own);
    // A new branch is small; an old one (which had members) is looked at only if it lost one.
    if ((fresh || shrank) && isEmptyObject(slot)) {
      delete dst[key];
      if (old !== undefined) lost = true;
    }
  }
  return lost;
}

/**
 * One mutation equal to applying `a`, then `b` (neither is changed). Where `b` merges a
 * branch onto a leaf `a` merges, the result also deletes that path first, so the branch is
 * not merged into what the tree held before `a`.
 */
export function combine(a: Mut, b: Mut): Mut {
  const out: Mut = { merge: clone(a.merge), delete: clone(a.delete) };
  if (b.delete === 1) out.merge = {};
  else forEachDelete(b.delete, (path) => unmerge(out.merge, path, 0));
  out.delete = union(out.delete, b.delete);
  const holder = { d: out.delete };
  mergeInto(out.merge, holder, [], b.merge);
  out.delete = holder.d;
  dropCoveredMarkers(out.merge, out.delete);
  return out;
}

/** Removes `path` from a merge tree, keeping the (possibly emptied) branches above it. */
function unmerge(map: JsonObject, path: string[], i: number): void {
  if (i === path.length - 1) {
    delete map[path[i]];
    return;
  }
  const child = map[path[i]];
  if (isObject(child)) unmerge(child, path, i + 1);
}

function mergeInto(dst: JsonObject, del: { d: Del }, prefix: string[], src: JsonObject): void {
  for (const [key, value] of Object.entries(src)) {
    const existing = dst[key];
    if (isObject(existing) && isObject(value)) {
      prefix.push(key);
      mergeInto(existing, del, prefix, value);
      prefix.pop();
    } else if (existing !== undefined && isObject(value)) {
      del.d = insertDelete(del.d, [...prefix, key]);
      dst[key] = clone(value);
    } else {
      dst[key] = clone(value);
    }
  }
}

/** Drops empty branches the deletes already cover (they mark nothing). */
function dropCoveredMarkers(map: JsonObject, d: Del | undefined): void {
  for (const [key, value] of Object.entries(map)) {
    if (!isObject(value)) continue;
    const sub = d === 1 ? 1 : d?.[key];
    dropCoveredMarkers(value, sub as Del | undefined);
    if (Object.keys(value).length === 0 && sub === 1) delete map[key];
  }
}

const inRange = (key: string, min?: string, max?: string) =>
  (min === undefined || compareKeys(key, min) >= 0) && (max === undefined || compareKeys(key, max) <= 0);

/**
 * The part of `m` a reader of `path` (children within [min, max]) sees, in absolute
 * coordinates: changes at or under the path, and deletes or leaf writes of its ancestors,
 * which delete it.
 */
export function restrictRange(m: Mut, path: string[], min?: string, max?: string): Mut {
  let ancestorGone = false;
  let del: Del | undefined = m.delete;
  let merge: JsonObject | undefined = m.merge;
  let leaf: Json | undefined;
  for (const seg of path) {
    if (del === 1 || leaf !== undefined) ancestorGone = true;
    del = del === 1 ? 1 : del?.[seg];
    const next: Json | undefined = merge?.[seg];
    merge = isObject(next) ? next : undefined;
    leaf = next !== undefined && !isObject(next) ? next : undefined;
  }
  const out: Mut = { merge: {}, delete: {} };
  if (ancestorGone || del === 1) {
    out.delete = nest(path, 1) as Del;
  } else if (del !== undefined) {
    const kept: { [k: string]: Del } = {};
    for (const [k, sub] of Object.entries(del)) if (inRange(k, min, max)) kept[k] = sub as Del;
    if (Object.keys(kept).length) out.delete = nest(path, kept) as Del;
  }
  if (leaf !== undefined) {
    out.merge = nest(path, leaf) as JsonObject;
  } else if (merge !== undefined) {
    // Kept even when no child is in range: merging a branch turns a leaf there into a branch.
    const kept: JsonObject = {};
    for (const [k, v] of Object.entries(merge)) if (inRange(k, min, max)) kept[k] = v;
    out.merge = path.length ? (nest(path, kept) as JsonObject) : kept;
  }
  return out;
}

/** Key order as the server's: by UTF-8 bytes, which is code point order. */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}
