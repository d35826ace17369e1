/**
 * WireEncodeError is thrown when a value cannot be written as JSON at all (NaN, a function, a
 * cycle). Encoders validate first, so callers normally see ValidationError instead.
 */
export class WireEncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireEncodeError";
  }
}

/**
 * canonicalJson writes RFC 8785 (JCS) text: members sorted by UTF-16 code units, no whitespace,
 * ECMAScript number and string formatting. Equal content gives equal bytes, which the manifest
 * ETag (digest section 6.1) relies on. One deliberate extension: a bigint is written as a plain
 * integer, because Margo's uint64 fields must stay exact beyond 2^53 (JCS would round them).
 * Members whose value is `undefined` are left out, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  const parts: string[] = [];
  write(value, parts, new Set());
  return parts.join("");
}

/** canonicalJsonBytes is canonicalJson as the UTF-8 bytes that go on the wire and get hashed. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value));
}

function write(value: unknown, out: string[], seen: Set<object>): void {
  switch (typeof value) {
    case "string":
      out.push(JSON.stringify(value));
      return;
    case "boolean":
      out.push(value ? "true" : "false");
      return;
    case "bigint":
      out.push(value.toString());
      return;
    case "number":
      if (!Number.isFinite(value)) throw new WireEncodeError(`cannot write ${value} as JSON`);
      // ECMAScript Number-to-String is exactly JCS number serialization (RFC 8785 3.2.2.3).
      out.push(JSON.stringify(value));
      return;
    case "object": {
      if (value === null) {
        out.push("null");
        return;
      }
      if (seen.has(value)) throw new WireEncodeError("cannot write a cyclic value as JSON");
      seen.add(value);
      if (Array.isArray(value)) {
        out.push("[");
        value.forEach((item, i) => {
          if (i > 0) out.push(",");
          write(item === undefined ? null : item, out, seen);
        });
        out.push("]");
      } else {
        const record = value as Record<string, unknown>;
        const keys = Object.keys(record)
          .filter((k) => record[k] !== undefined)
          .sort();
        out.push("{");
        keys.forEach((k, i) => {
          if (i > 0) out.push(",");
          out.push(JSON.stringify(k), ":");
          write(record[k], out, seen);
        });
        out.push("}");
      }
      seen.delete(value);
      return;
    }
    default:
      throw new WireEncodeError(`cannot write a ${typeof value} as JSON`);
  }
}
