// Kora's web client (docs/web-client.md): `import { connect } from "/v1/client.js"`.
export { connect, Kora } from "./client.js";
export type { ConnectOptions, Status, SubscribeOptions, TransactionResult } from "./client.js";
export { KoraError } from "./errors.js";
export type { Query, QueryOptions } from "./view.js";
export type * from "./protocol.js";
