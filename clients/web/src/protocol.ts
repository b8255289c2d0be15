// Kora's WebSocket protocol (docs/protocol.md), generated from the Rust types of
// crates/kora-protocol. Do not edit: run `KORA_BLESS=1 cargo test -p kora-protocol typescript`.

/** Any JSON value. */
export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]?: JsonValue } | null;

/** A delete tree: `1` deletes the path it stands at; an object lists deletes further down. */
export type DeleteTree = 1 | { [key in string]?: DeleteTree };

/** A mutation: deletes apply first, then merges (`null` members of `merge` delete). */
export type Mutation = { merge?: { [key in string]?: JsonValue }; delete?: DeleteTree };

/**
 * A condition a write commits under: the value at `path` equals `equals` (`null`: nothing is
 * there), or nothing at, beneath or above `path` changed after sequence `since`.
 */
export type Condition = { path: string; equals: JsonValue } | { path: string; since: number };

/**
 * Children ordered by the value at `child` (a path below each child; `""`: its own value)
 * instead of by key, from `from` to `to` inclusive (docs/protocol.md, "Ordering by a child value").
 */
export type ByChild = { child: string; from?: JsonValue; to?: JsonValue };

export type Code = "bad_request" | "invalid_path" | "too_large" | "permission_denied" | "validation_failed" | "not_found" | "conflict" | "unavailable" | "internal";

export type QueryPath = { path: string, 
/**
 * Smallest child key (inclusive, by bytes).
 */
min?: string, 
/**
 * Largest child key (inclusive, by bytes).
 */
max?: string, 
/**
 * Order the children by the value at a child path instead of by key; `min` and `max`
 * then bound keys among the children at exactly `by.from` and `by.to`.
 */
by?: ByChild, 
/**
 * First N children (last N with `reverse`).
 */
limit?: number, reverse?: boolean, 
/**
 * Keep receiving changes.
 */
subscribe?: boolean, 
/**
 * Resume a subscription after this sequence instead of reading a snapshot.
 */
since?: number, 
/**
 * The store history `since` belongs to (a query result's `history`): a resume from
 * another history — the server was restored from a backup — gets a `reset`.
 */
history?: string, 
/**
 * The subscription's name in pushes (default: the path).
 */
sub?: string, };

export type Request = { "op": "query", id: JsonValue, paths: Array<QueryPath>, } | { "op": "unsubscribe", id: JsonValue, sub: string, } | { "op": "mutate", id: JsonValue, mutation: Mutation, stamp?: string, conditions?: Array<Condition>, } | { "op": "call", id: JsonValue, name: string, args?: JsonValue, } | { "op": "cast", id?: JsonValue, name: string, args?: JsonValue, } | { "op": "ping", id: JsonValue, } | { "op": "auth", id: JsonValue, token?: string, };

export type Current = { path: string, value: JsonValue | null, };

export type ErrorBody = { code: Code, message: string, failed?: Array<number>, current?: Array<Current>, seq?: number, };

export type Reply = { id: JsonValue, result: JsonValue } | { id: JsonValue, error: ErrorBody };

export type Push = { "push": "change", sub: string, seq: number, stamp: string, mutation: Mutation, } | { "push": "reset", sub: string, seq: number, value: JsonValue | null, query?: QueryPath, } | { "push": "ended", sub: string, error: ErrorBody, } | { "push": "auth_expired" };

export type QueryResult = { seq: number, value: JsonValue, 
/**
 * The store history the sequences belong to, when the query subscribed: a client keeps
 * it with `seq` and sends both to resume.
 */
history?: string, };

export type Committed = { seq: number, stamp: string, };

export type AuthResult = { auth: JsonValue | null, };

export type ServerFrame = Reply | Push;
