/**
 * manifestVersion is a uint64 on the wire (2^64-1 is legal) but SQLite's INTEGER is signed 64-bit,
 * so the agent stores it as TEXT of exactly 20 zero-padded digits: the whole range fits and text
 * order equals numeric order, so the floor check can compare stored text directly.
 */

export const U64_MAX = (1n << 64n) - 1n;

const WIDTH = 20;

/** A value outside [0, 2^64-1], or stored text that is not one: fail loudly rather than wrap. */
export class U64RangeError extends RangeError {
  override readonly name = "U64RangeError";
}

export function encodeU64(value: bigint): string {
  if (value < 0n || value > U64_MAX)
    throw new U64RangeError(`${value} is outside the uint64 range`);
  return value.toString().padStart(WIDTH, "0");
}

export function decodeU64(text: string): bigint {
  if (text.length !== WIDTH || !/^[0-9]+$/.test(text)) {
    throw new U64RangeError(`stored u64 ${JSON.stringify(text)} is not ${WIDTH} digits`);
  }
  const value = BigInt(text);
  if (value > U64_MAX) throw new U64RangeError(`stored u64 ${text} exceeds 2^64-1`);
  return value;
}
