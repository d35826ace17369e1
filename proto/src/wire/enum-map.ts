/**
 * EnumMap translates between a generated protobuf enum and the spec's wire strings. The proto
 * names every value `<ENUM>_<WIRE IN UPPER SNAKE>` (proto/margo/model/v1/common.proto), so the
 * table is derived mechanically from the generated enum object and cannot drift from it.
 */
export interface EnumMap<E extends number> {
  /** wireValues lists the accepted strings, in enum order (for problem messages and tests). */
  readonly wireValues: readonly string[];
  toWire(value: E): string | undefined;
  fromWire(text: string): E | undefined;
}

/** Casing says how the suffix of an enum value name becomes the wire string. */
export type Casing = "lower" | "pascal";

function wireName(suffix: string, casing: Casing): string {
  const words = suffix.toLowerCase().split("_");
  if (casing === "lower") return words.join("_");
  return words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join("");
}

/**
 * enumMap builds the table for one generated enum. `prefix` is the value-name prefix including
 * the trailing underscore ("DEPLOYMENT_STATE_"); `only` restricts the accepted strings where one
 * proto enum serves schemas with different enum lists (device vs. application architectures).
 * The `_UNSPECIFIED` and ts-proto's `UNRECOGNIZED` values never map to a wire string.
 */
export function enumMap<E extends number>(
  generated: Record<string, string | number>,
  prefix: string,
  casing: Casing,
  only?: readonly string[],
): EnumMap<E> {
  const toWire = new Map<number, string>();
  const fromWire = new Map<string, number>();
  for (const [name, value] of Object.entries(generated)) {
    if (typeof value !== "number" || !name.startsWith(prefix)) continue;
    const suffix = name.slice(prefix.length);
    if (suffix === "UNSPECIFIED") continue;
    const wire = wireName(suffix, casing);
    if (only && !only.includes(wire)) continue;
    toWire.set(value, wire);
    fromWire.set(wire, value);
  }
  return {
    wireValues: [...fromWire.keys()],
    toWire: (value) => toWire.get(value),
    fromWire: (text) => fromWire.get(text) as E | undefined,
  };
}
