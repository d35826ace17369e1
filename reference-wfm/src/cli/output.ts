/**
 * Output helpers. Human output is aligned text tables; `--json` output is the proto3 JSON mapping
 * of the admin API messages (64-bit integers as decimal strings, bytes as base64, timestamps as
 * RFC 3339), so scripts see one documented shape whatever the command.
 */

/** Writes one line to stdout; injected so tests can capture output without a child process. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

export const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Aligned columns with a dashed rule under the header; empty tables say so instead. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return "(none)";
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** Key/value block for one object (`app show`, `device show`). */
export function keyValues(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`).join("\n");
}

/** One JSON document per command, compact so `jq` and line readers both work. */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

export function isoOrDash(d: Date | undefined): string {
  return d ? d.toISOString() : "-";
}
