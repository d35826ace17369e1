/**
 * Evidence redaction. Reports are shared with people outside the vendor's security boundary
 * (CI logs, certification bodies), so nothing that grants access may reach them: private keys,
 * bearer tokens, cookies. Large bodies are cut so a report stays readable, keeping size and
 * digest so a reader can still tell two bodies apart. Certificates become short summaries
 * (fingerprint, subject, SAN) because a reader needs to know *which* identity was used, not its PEM.
 */
import { createHash, X509Certificate } from "node:crypto";
import type { Evidence, HttpMessageEvidence } from "./types.js";

/** Bodies and strings above this many bytes are truncated in evidence. */
export const MAX_BODY_BYTES = 64 * 1024;

const PRIVATE_KEY_BLOCK =
  /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g;
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
/** Header names whose values grant access. */
const SECRET_HEADERS = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "set-cookie",
  "x-api-key",
]);
/** Object keys (in gRPC payloads and details) whose values grant access. */
const SECRET_KEYS =
  /^(authorization|proxy-authorization|cookie|set-cookie|token|bearer|bearer-?token|key-?pem|svid-?key)$|private-?key|password|secret|access-?token|auth-?token/i;

/** Placeholder shown where a secret was. */
export const REDACTED = "[redacted]";

/**
 * A name (option, environment variable, header) that says its value is a secret. Broader than
 * SECRET_KEYS on purpose: in command lines and env there is no schema telling a token from text.
 */
const SECRET_NAME = /token|passw(or)?d|secret|api[-_]?key|credential|private[-_]?key|auth[-_]?key/i;

/** Whether a name (option, env var, header) looks like it carries a secret. */
export function looksSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** A shell word: double-quoted, single-quoted, or up to the next blank (or quote/semicolon). */
const WORD = String.raw`(?:"[^"]*"|'[^']*'|[^\s"';&|]+)`;
/** `--token abc`, `--password=abc`, `-api-key "abc"`: the option name decides. */
const SECRET_OPTION = new RegExp(
  String.raw`(^|[\s"'])(--?[A-Za-z0-9_-]*(?:token|passw(?:or)?d|secret|api[-_]?key|credential|auth[-_]?key)[A-Za-z0-9_-]*)(=|\s+)(${WORD})`,
  "gi",
);
/** `TOKEN=abc cmd`, `export DB_PASSWORD='x'`: the variable name decides. */
const SECRET_ASSIGNMENT = new RegExp(
  String.raw`(^|[\s"';&|(?])([A-Za-z0-9_]*(?:token|passw(?:or)?d|secret|api_?key|credential|private_?key|auth_?key)[A-Za-z0-9_]*)=(${WORD})`,
  "gi",
);
/** `-H "X-Api-Key: abc"`, `Authorization: Bearer abc` inside a command or a log line. */
const SECRET_HEADER_TEXT =
  /\b((?:proxy-)?authorization|set-cookie|cookie|x-api-key|api-key|x-auth-token|private-token|x-[A-Za-z0-9-]*(?:token|secret|api-key))(\s*:\s*)((?:bearer|basic|digest)\s+)?([^"'\r\n]+)/gi;

/** Literal secret values learned at run time (shell driver env entries with a secret name). */
const learned = new Set<string>();

/**
 * Teach redaction a literal secret, e.g. the value of a shell driver `env` entry named
 * `VENDOR_TOKEN`: the command line shows only `$VENDOR_TOKEN`, but the tool may echo the value
 * on stdout/stderr. Values shorter than 4 characters are ignored (they would blank out text).
 */
export function learnSecret(value: string): void {
  if (value.length >= 4) learned.add(value);
}

/** Learn the values of every env entry whose name looks secret. */
export function learnSecretEnv(env: Record<string, string> | undefined): void {
  for (const [k, v] of Object.entries(env ?? {})) if (looksSecretName(k)) learnSecret(v);
}

function isRedacted(word: string): boolean {
  return word.replace(/^["']|["']$/g, "") === REDACTED;
}

/**
 * Secrets in command lines and log text: option values, secret-named assignments, secret header
 * text and learned literals. Part of redactText, so every string in evidence gets it.
 */
export function redactSecretsInText(text: string): string {
  let out = text;
  // Longest first, so a secret containing another is replaced whole.
  for (const v of [...learned].sort((a, b) => b.length - a.length))
    out = out.split(v).join(REDACTED);
  out = out.replace(
    SECRET_HEADER_TEXT,
    (m, name: string, sep: string, scheme = "", value: string) =>
      isRedacted(value.trim()) ? m : `${name}${sep}${scheme}${REDACTED}`,
  );
  out = out.replace(SECRET_OPTION, (m, pre: string, opt: string, sep: string, value: string) =>
    isRedacted(value) ? m : `${pre}${opt}${sep}${REDACTED}`,
  );
  out = out.replace(SECRET_ASSIGNMENT, (m, pre: string, name: string, value: string) =>
    isRedacted(value) ? m : `${pre}${name}=${REDACTED}`,
  );
  return out;
}

/** Summarise one PEM certificate as fingerprint + subject + SAN; falls back to a digest of the text. */
export function summariseCertificate(pem: string): string {
  try {
    const cert = new X509Certificate(pem);
    const fp = cert.fingerprint256.replaceAll(":", "").toLowerCase();
    const subject = cert.subject.replaceAll("\n", ", ");
    const san = cert.subjectAltName ?? "none";
    return `[certificate sha256=${fp} subject="${subject}" san="${san}" notAfter=${cert.validTo}]`;
  } catch {
    return `[certificate (unparsable) text-sha256=${sha256Hex(Buffer.from(pem))}]`;
  }
}

/**
 * Redact free text: private key blocks go, certificate blocks become summaries, bearer tokens go,
 * and so do secret option values, secret-named assignments, secret header text and learned literals.
 * Applied to bodies, notes, messages and every string inside structured evidence.
 */
export function redactText(text: string): string {
  let out = text.replace(PRIVATE_KEY_BLOCK, (_m, kind: string) => `[redacted ${kind}PRIVATE KEY]`);
  out = out.replace(CERTIFICATE_BLOCK, (m) => summariseCertificate(m));
  out = out.replace(
    /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g,
    (_m, scheme: string) => `${scheme} ${REDACTED}`,
  );
  return redactSecretsInText(out);
}

/** Cut a string to the byte cap, saying how much was left out. */
export function capText(
  text: string,
  maxBytes = MAX_BODY_BYTES,
): { text: string; truncated: boolean } {
  const bytes = Buffer.byteLength(text);
  if (bytes <= maxBytes) return { text, truncated: false };
  const cut = Buffer.from(text).subarray(0, maxBytes).toString("utf8");
  return { text: `${cut}\n[... ${bytes - maxBytes} more bytes not kept]`, truncated: true };
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Build the evidence form of a message body from its exact bytes (wire clients call this).
 * Text bodies are kept as UTF-8 when they decode cleanly, others as base64; both capped.
 */
export function bodyEvidence(
  bytes: Uint8Array,
  maxBytes = MAX_BODY_BYTES,
): NonNullable<HttpMessageEvidence["body"]> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sizeBytes = buf.byteLength;
  const sha256 = sha256Hex(buf);
  const truncated = sizeBytes > maxBytes;
  const kept = truncated ? buf.subarray(0, maxBytes) : buf;
  const asText = decodeUtf8(kept, truncated);
  if (asText !== undefined) return { text: redactText(asText), sizeBytes, sha256, truncated };
  return { base64: kept.toString("base64"), sizeBytes, sha256, truncated };
}

/** True when the bytes hold control characters no text body has (NUL..BS, SO..US). */
function looksBinary(buf: Buffer): boolean {
  for (const b of buf) if (b < 0x09 || (b > 0x0d && b < 0x20)) return true;
  return false;
}

function decodeUtf8(buf: Buffer, wasCut: boolean): string | undefined {
  if (looksBinary(buf)) return undefined;
  // fatal: binary bodies (gzip, tar) must not turn into replacement characters. A cap that cut
  // a multi-byte sequence is tolerated by retrying without the last (up to 3) bytes.
  for (let drop = 0; drop <= (wasCut ? Math.min(3, buf.byteLength) : 0); drop++) {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(
        buf.subarray(0, buf.byteLength - drop),
      );
    } catch {
      // try a shorter tail
    }
  }
  return undefined;
}

/** Redact secret headers (keeping the auth scheme, which is evidence in itself). */
export function redactHeaders(
  headers: Record<string, string | string[]>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!SECRET_HEADERS.has(name.toLowerCase())) {
      out[name] = Array.isArray(value) ? value.map(redactText) : redactText(value);
      continue;
    }
    const one = (v: string) => {
      const scheme = /^(Bearer|Basic|Digest)\s/i.exec(v)?.[1];
      return scheme ? `${scheme} ${REDACTED}` : REDACTED;
    };
    out[name] = Array.isArray(value) ? value.map(one) : one(value);
  }
  return out;
}

function redactBody(body: HttpMessageEvidence["body"]): HttpMessageEvidence["body"] {
  if (!body) return body;
  const out = { ...body };
  if (out.text !== undefined) {
    const capped = capText(redactText(out.text));
    out.text = capped.text;
    out.truncated = out.truncated || capped.truncated;
  }
  if (out.base64 !== undefined && out.base64.length > Math.ceil((MAX_BODY_BYTES * 4) / 3)) {
    out.base64 = out.base64.slice(0, Math.ceil((MAX_BODY_BYTES * 4) / 3));
    out.truncated = true;
  }
  return out;
}

/**
 * Make any value JSON-safe and secret-free: bigint -> decimal string (ts-proto uint64),
 * bytes -> {base64,sizeBytes,sha256}, secret keys -> [redacted], strings redacted and capped,
 * cycles cut. Used for gRPC payloads, docker data and failure details.
 */
export function sanitize(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (value === null || value === undefined) return value;
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string") return capText(redactText(value)).text;
  if (typeof value === "number" || typeof value === "boolean") return value;
  if (typeof value === "function" || typeof value === "symbol") return undefined;
  if (depth > 40) return "[too deep]";
  if (value instanceof Uint8Array) {
    const b = bodyEvidence(value);
    return b.text !== undefined
      ? { text: b.text, sizeBytes: b.sizeBytes, sha256: b.sha256 }
      : { base64: b.base64, sizeBytes: b.sizeBytes, sha256: b.sha256 };
  }
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Error) return { name: value.name, message: redactText(value.message) };
  if (typeof value !== "object") return String(value);
  if (seen.has(value)) return "[cycle]";
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => sanitize(v, depth + 1, seen));
  if (value instanceof Map) return sanitize(Object.fromEntries(value), depth + 1, seen);
  if (value instanceof Set) return sanitize([...value], depth + 1, seen);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    out[k] =
      SECRET_KEYS.test(k) && v !== null && v !== "" ? REDACTED : sanitize(v, depth + 1, seen);
  }
  return out;
}

/** Redact one piece of evidence before the runner stores it. */
export function redactEvidence(e: Evidence): Evidence {
  switch (e.kind) {
    case "http": {
      const out: Evidence = {
        ...e,
        request: {
          ...e.request,
          url: redactText(e.request.url),
          headers: redactHeaders(e.request.headers),
          body: redactBody(e.request.body),
        },
      };
      if (out.request.body === undefined) delete out.request.body;
      if (e.response) {
        out.response = {
          ...e.response,
          headers: redactHeaders(e.response.headers),
          body: redactBody(e.response.body),
        };
        if (out.response.body === undefined) delete out.response.body;
      }
      if (e.transportError !== undefined) out.transportError = redactText(e.transportError);
      return out;
    }
    case "grpc": {
      const out: Evidence = { ...e, request: sanitize(e.request) };
      if ("response" in e) out.response = sanitize(e.response);
      if (e.error) out.error = { code: e.error.code, message: redactText(e.error.message) };
      return out;
    }
    case "docker":
      return { ...e, data: sanitize(e.data) };
    case "command":
      return {
        ...e,
        command: redactText(e.command),
        stdout: capText(redactText(e.stdout)).text,
        stderr: capText(redactText(e.stderr)).text,
      };
    case "note":
      return { ...e, text: capText(redactText(e.text)).text };
  }
}
