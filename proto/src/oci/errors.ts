/**
 * OciError is every failure the registry reports, with the distribution spec's error code (from the
 * JSON `errors` body: BLOB_UNKNOWN, MANIFEST_UNKNOWN, NAME_UNKNOWN, ...) so callers branch on the
 * code instead of parsing messages, and with repo/reference so a log line says what was asked.
 */
export class OciError extends Error {
  /** Distribution error code, or a local one: HTTP_<status>, TOO_LARGE, NETWORK, PROTOCOL. */
  readonly code: string;
  /** HTTP status, 0 when the request never got a response. */
  readonly status: number;
  readonly repo: string | undefined;
  readonly reference: string | undefined;
  /** The registry's `detail` member, when it sent one. */
  readonly detail: unknown;
  constructor(
    message: string,
    init: { code: string; status: number; repo?: string; reference?: string; detail?: unknown },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "OciError";
    this.code = init.code;
    this.status = init.status;
    this.repo = init.repo;
    this.reference = init.reference;
    this.detail = init.detail;
  }
}
