import type { Code, Current, ErrorBody } from "./protocol.js";

/**
 * An error with the server's `code` (docs/protocol.md, "Errors"), or `unavailable` when the
 * client cannot reach the server for something only the server can answer. A `conflict`
 * carries `failed`, `current` and `seq` as the server sent them.
 */
export class KoraError extends Error {
  readonly code: Code;
  readonly failed?: number[];
  readonly current?: Current[];
  readonly seq?: number;

  constructor(code: Code, message: string, body?: Partial<ErrorBody>) {
    super(message);
    this.name = "KoraError";
    this.code = code;
    if (body?.failed) this.failed = body.failed;
    if (body?.current) this.current = body.current;
    if (body?.seq !== undefined) this.seq = body.seq;
  }

  static from(body: ErrorBody): KoraError {
    return new KoraError(body.code, body.message, body);
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message };
    if (this.failed) body.failed = this.failed;
    if (this.current) body.current = this.current;
    if (this.seq !== undefined) body.seq = this.seq;
    return body;
  }
}

/** Refusals that will not change by sending again: the write is dropped and rolled back. */
export const PERMANENT: ReadonlySet<Code> = new Set<Code>([
  "bad_request",
  "invalid_path",
  "too_large",
  "permission_denied",
  "validation_failed",
  "not_found",
  "conflict",
]);
