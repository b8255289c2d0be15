// Stamps and the hybrid logical clock, as in kora-core (crates/kora-core/src/stamp.rs).
//
// A stamp is 48 bits of milliseconds, a 16-bit counter and a 64-bit origin id, written as 26
// Crockford base32 characters whose text order is the stamps' order — so the client keeps
// stamps as strings and compares them with `<`. The clock packs milliseconds and counter into
// one 64-bit number, which makes the HLC rules one `max` each:
//   local event: next = max(physical << 16, last + 1)
//   receive:     last = max(last, remote)

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const MASK64 = (1n << 64n) - 1n;

/** How far ahead of the wall clock a seen stamp may be and still be absorbed (as the server). */
export const MAX_SKEW_MS = 60_000;

/** The text form of a stamp: 26 characters, the first carrying the top 3 of 128 bits. */
export function encodeStamp(hlc: bigint, origin: bigint): string {
  let value = ((hlc & MASK64) << 64n) | (origin & MASK64);
  const out = new Array<string>(26);
  for (let i = 25; i >= 0; i--) {
    out[i] = ALPHABET[Number(value & 31n)];
    value >>= 5n;
  }
  return out.join("");
}

/** A stamp's parts, or `null` when `text` is not 26 base32 characters. */
export function decodeStamp(text: string): { hlc: bigint; origin: bigint } | null {
  if (typeof text !== "string" || text.length !== 26) return null;
  let value = 0n;
  for (let i = 0; i < 26; i++) {
    const d = digit(text.charCodeAt(i));
    if (d < 0 || (i === 0 && d > 7)) return null;
    value = (value << 5n) | BigInt(d);
  }
  return { hlc: value >> 64n, origin: value & MASK64 };
}

function digit(code: number): number {
  let c = String.fromCharCode(code).toUpperCase();
  if (c === "O") c = "0";
  if (c === "I" || c === "L") c = "1";
  return ALPHABET.indexOf(c);
}

/** A hybrid logical clock for one origin (one tab: see `LocalStore.allocateOrigin`). */
export class Clock {
  private last = 0n;

  constructor(
    readonly origin: bigint,
    private readonly time: () => number = Date.now,
  ) {}

  /** A stamp newer than every stamp issued or observed before. */
  now(): string {
    const physical = BigInt(Math.max(0, Math.floor(this.time()))) << 16n;
    const next = physical > this.last ? physical : this.last + 1n;
    this.last = next;
    return encodeStamp(next, this.origin);
  }

  /**
   * Absorbs a stamp seen elsewhere, so that later local stamps are newer than it. A stamp
   * more than `MAX_SKEW_MS` ahead of this clock's wall time is not absorbed (false): one bad
   * clock must not drag every client's stamps into the future.
   */
  observe(stamp: string): boolean {
    const parts = decodeStamp(stamp);
    if (!parts) return false;
    const ahead = Number(parts.hlc >> 16n) - this.time();
    if (ahead > MAX_SKEW_MS) return false;
    if (parts.hlc > this.last) this.last = parts.hlc;
    return true;
  }
}
