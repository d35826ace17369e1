import {
  BackoffStrategy,
  type ProblemDetail,
  type ProblemFieldError,
} from "../gen/margo/model/v1/problem_detail.js";
import { pointer, ValidationError } from "../problem.js";
import { type Decoded, decodeJson, encodeJson, isUriReference, mustTree } from "./codec.js";
import { enumMap } from "./enum-map.js";
import { type JsonObject, type JsonValue, setOwn } from "./json-value.js";
import { copyJson, type Reader } from "./reader.js";

/** PROBLEM_MEDIA_TYPE is the Content-Type of every Margo error body (RFC 9457). */
export const PROBLEM_MEDIA_TYPE = "application/problem+json";

/** none, fixed, exponential (digest 4.4). */
export const BACKOFF_STRATEGIES = enumMap<BackoffStrategy>(
  BackoffStrategy,
  "BACKOFF_STRATEGY_",
  "lower",
);

const CORE = [
  "type",
  "title",
  "status",
  "detail",
  "instance",
  "retryable",
  "retryAfterSeconds",
  "backoffStrategy",
  "errors",
];

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

function readUriRef(
  r: Reader,
  obj: JsonObject,
  key: string,
  required: boolean,
): string | undefined {
  const v = r.string(obj, key, "", { required });
  if (v !== undefined && !isUriReference(v)) {
    r.error("wire.format", pointer(key), `${JSON.stringify(v)} is not a URI reference`);
    return undefined;
  }
  return v;
}

/**
 * readProblemDetail maps an RFC 9457 body. Members other than the schema's are extension
 * members (RFC 9457 3.2) and are kept verbatim in extensionMembers.
 */
export function readProblemDetail(tree: JsonValue, r: Reader): ProblemDetail | undefined {
  const obj = r.object(tree, "", "problem detail");
  if (!obj) return undefined;
  const type = readUriRef(r, obj, "type", true);
  const title = r.string(obj, "title", "", { required: true });
  const status = r.integer(obj, "status", "", {
    required: true,
    min: -(2 ** 31),
    max: 2 ** 31 - 1,
  });
  const detail = r.string(obj, "detail", "");
  const instance = readUriRef(r, obj, "instance", false);
  const retryable = r.boolean(obj, "retryable", "");
  let retryAfterSeconds: bigint | undefined;
  const ra = r.present(obj, "retryAfterSeconds", "", false);
  if (ra !== undefined) {
    if ((typeof ra === "number" && Number.isSafeInteger(ra)) || typeof ra === "bigint") {
      const n = BigInt(ra);
      if (n >= INT64_MIN && n <= INT64_MAX) retryAfterSeconds = n;
      else r.error("wire.type", pointer("retryAfterSeconds"), `${n} does not fit a 64-bit integer`);
    } else r.error("wire.type", pointer("retryAfterSeconds"), "must be an integer");
  }
  const backoffStrategy = Object.hasOwn(obj, "backoffStrategy")
    ? r.enumValue(obj, "backoffStrategy", "", BACKOFF_STRATEGIES)
    : BackoffStrategy.BACKOFF_STRATEGY_UNSPECIFIED;
  const errors: ProblemFieldError[] = [];
  let errorsOk = true;
  r.array(obj, "errors", "")?.forEach((item, i) => {
    const at = pointer("errors", i);
    const e = r.object(item, at, "field error");
    if (!e) {
      errorsOk = false;
      return;
    }
    r.members(e, at, { known: ["field", "message"], closed: false });
    const field = r.string(e, "field", at);
    const message = r.string(e, "message", at);
    errors.push({
      ...(field !== undefined ? { field } : {}),
      ...(message !== undefined ? { message } : {}),
    });
  });
  const extensionMembers: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(obj))
    if (!CORE.includes(k)) setOwn(extensionMembers, k, copyJson(v));
  if (
    type === undefined ||
    title === undefined ||
    status === undefined ||
    backoffStrategy === undefined
  ) {
    return undefined;
  }
  if (!errorsOk) return undefined;
  return {
    type,
    title,
    status,
    ...(detail !== undefined ? { detail } : {}),
    ...(instance !== undefined ? { instance } : {}),
    ...(retryable !== undefined ? { retryable } : {}),
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
    backoffStrategy,
    errors,
    ...(Object.keys(extensionMembers).length > 0 ? { extensionMembers } : {}),
  };
}

function writeProblemDetail(p: ProblemDetail): JsonValue {
  const out: Record<string, unknown> = {
    type: p.type,
    title: p.title,
    status: p.status,
    detail: p.detail,
    instance: p.instance,
    retryable: p.retryable,
    retryAfterSeconds: p.retryAfterSeconds,
    backoffStrategy: BACKOFF_STRATEGIES.toWire(p.backoffStrategy),
    errors: p.errors.length
      ? p.errors.map((e) => ({ field: e.field, message: e.message }))
      : undefined,
  };
  const ext = p.extensionMembers ? mustTree("problem detail", p.extensionMembers, "") : {};
  const clashes = Object.keys(ext as JsonObject).filter((k) => CORE.includes(k));
  if (clashes.length > 0) {
    throw new ValidationError(
      "cannot encode problem detail",
      clashes.map((k) => ({
        rule: "wire.unknown-member",
        pointer: pointer(k),
        message: `extension member "${k}" would overwrite the standard member`,
        severity: "error" as const,
      })),
    );
  }
  for (const [k, v] of Object.entries(ext as JsonObject)) setOwn(out, k, v);
  return out as JsonValue;
}

/** encodeProblemDetail writes an application/problem+json body as canonical JSON. */
export function encodeProblemDetail(value: ProblemDetail): Uint8Array {
  return encodeJson("problem detail", writeProblemDetail(value), readProblemDetail);
}

/** decodeProblemDetail reads an error body; extension members are kept; never throws. */
export function decodeProblemDetail(input: Uint8Array | string): Decoded<ProblemDetail> {
  return decodeJson(input, readProblemDetail);
}
