import { createHash } from "node:crypto";
import {
  SvidVerificationError,
  TrustAnchors,
  type VerifiedSvid,
  verifySvid,
} from "@margo/proto/identity";
import { IdentityError } from "./types.js";

/** Validity bounds may be off by this much: devices with rough clocks still connect (digest 5.2). */
export const CLOCK_SKEW_SECONDS = 30;
/** Bounds memory under a flood of distinct chains; a full cache simply starts over. */
const VERIFY_CACHE_MAX = 20_000;

interface CachedVerification {
  result: VerifiedSvid;
  notBefore: number;
  notAfter: number;
}

/**
 * SVID verification against one set of anchors. Results are cached by the chain's SHA-256 until
 * the anchors change, and only the validity window is re-checked on a hit, so a reconnecting
 * client costs a hash instead of a parse and a signature check.
 */
export class VerifyCache {
  private anchors: TrustAnchors;
  private cache = new Map<string, CachedVerification>();

  constructor(
    private readonly trustDomain: string,
    anchorsDer: readonly Buffer[],
  ) {
    this.anchors = new TrustAnchors(anchorsDer);
  }

  /** New anchors: every cached verdict was reached against the old ones, so all are dropped. */
  setAnchors(anchorsDer: readonly Buffer[]): void {
    this.anchors = new TrustAnchors(anchorsDer);
    this.cache = new Map();
  }

  /** Verify `chainDer` (leaf first); failures are IdentityErrors named by the rule they broke. */
  verify(chainDer: readonly Buffer[], now: Date): VerifiedSvid {
    const h = createHash("sha256");
    for (const c of chainDer) h.update(c);
    const key = h.digest("base64");
    const t = now.getTime();
    const skew = CLOCK_SKEW_SECONDS * 1000;
    const hit = this.cache.get(key);
    if (hit) {
      if (hit.notBefore - skew > t)
        throw new IdentityError("svid.not-yet-valid", "the certificate is not yet valid");
      if (hit.notAfter + skew < t)
        throw new IdentityError("svid.expired", "a certificate on the path has expired");
      return hit.result;
    }
    let result: VerifiedSvid;
    try {
      result = verifySvid(chainDer, this.anchors, {
        trustDomain: this.trustDomain,
        now,
        skewSeconds: CLOCK_SKEW_SECONDS,
      });
    } catch (e) {
      if (e instanceof SvidVerificationError) throw new IdentityError(e.rule, e.message);
      throw e;
    }
    if (this.cache.size >= VERIFY_CACHE_MAX) this.cache.clear();
    this.cache.set(key, {
      result,
      notBefore: result.pathNotBefore.getTime(),
      notAfter: result.pathNotAfter.getTime(),
    });
    return result;
  }
}
