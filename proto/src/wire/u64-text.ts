import { UINT64_MAX } from "./reader.js";

/**
 * manifestVersion is a uint64 on the wire (it may reach 2^64-1) but SQLite's INTEGER is a signed
 * 64-bit value, so the WFM's and the agent's stores keep it as TEXT of exactly 20 zero-padded
 * decimal digits: the whole u64 range fits, and text order equals numeric order, so SQL
 * comparisons and ORDER BY stay right. One helper for both stores, so they cannot drift apart.
 */

/** The largest manifestVersion a client can ever reach. */
export const U64_MAX = UINT64_MAX;

/** Width of the stored text: 2^64-1 has 20 decimal digits. */
const WIDTH = 20;

/** Thrown when a value outside [0, 2^64-1] (or a malformed stored value) meets the store. */
export class U64RangeError extends RangeError {
  override readonly name = "U64RangeError";
}

/** encodeU64 gives the stored text of a u64; rejects values that do not fit rather than wrap. */
export function encodeU64(value: bigint): string {
  if (value < 0n || value > U64_MAX) {
    throw new U64RangeError(`${value} is outside the uint64 range`);
  }
  return value.toString().padStart(WIDTH, "0");
}

/** decodeU64 reads stored text back; a damaged row fails loudly instead of yielding a wrong version. */
export function decodeU64(text: string): bigint {
  if (text.length !== WIDTH || !/^[0-9]+$/.test(text)) {
    throw new U64RangeError(`stored u64 ${JSON.stringify(text)} is not ${WIDTH} digits`);
  }
  const value = BigInt(text);
  if (value > U64_MAX) throw new U64RangeError(`stored u64 ${text} exceeds 2^64-1`);
  return value;
}
