import { isIP } from "node:net";
import {
  type Issuer,
  type MintedCertificate,
  mintSvid,
  pemToDer,
  readCertificate,
  wfmSpiffeId,
} from "@margo/proto/identity";
import type { WfmConfig } from "../config.js";
import { IdentityError } from "./types.js";

/** Renew the WFM SVID at this fraction of its lifetime. */
const RENEW_AT = 2 / 3;
/** setTimeout's maximum delay; longer waits are split. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A failed renewal is retried this soon; the current SVID is still valid meanwhile. */
const RETRY_MS = 60_000;

/** The WFM's own SVID as the TLS edges serve it. */
export interface WfmSvid {
  certPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
}

/**
 * The WFM SVID: its one URI SAN plus `config.hostnames` as DNS/IP SANs. Back-dated by at most a
 * quarter of its lifetime (60 s at most) for peers with slow clocks, so that short test lifetimes
 * still leave the renewal point in the future.
 */
export function mintWfmSvid(config: WfmConfig, issuer: Issuer): Promise<MintedCertificate> {
  const now = Date.now();
  const lifetimeMs = config.wfmSvidLifetimeSeconds * 1000;
  return mintSvid({
    issuer,
    spiffeId: wfmSpiffeId(config.trustDomain, config.wfmId),
    dnsNames: config.hostnames.filter((h) => isIP(h) === 0),
    ipAddresses: config.hostnames.filter((h) => isIP(h) !== 0),
    notBefore: new Date(now - Math.min(60_000, lifetimeMs / 4)),
    notAfter: new Date(now + lifetimeMs),
  });
}

/** The served form of a freshly minted SVID (its key pair object is not kept). */
export function svidOf(svid: MintedCertificate): WfmSvid {
  return {
    certPem: svid.certPem,
    keyPem: svid.keyPem,
    notBefore: svid.notBefore,
    notAfter: svid.notAfter,
  };
}

/** The WFM SVID as read back from its files. */
export function svidFromPem(certPem: string, keyPem: string): WfmSvid {
  const der = pemToDer(certPem)[0];
  if (!der) throw new IdentityError("identity.corrupt", "the WFM SVID file holds no certificate");
  const facts = readCertificate(der);
  return { certPem, keyPem, notBefore: facts.notBefore, notAfter: facts.notAfter };
}

/** Epoch ms at which `svid` should be replaced: 2/3 of its lifetime. */
export function renewalDue({ notBefore, notAfter }: WfmSvid): number {
  return notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * RENEW_AT;
}

/**
 * Keeps one timer armed for the renewal of whatever SVID is current. The SVID is read when the
 * timer is armed, so a renewal or rotation that replaced it re-arms for the new one.
 */
export class RenewalTimer {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly current: () => WfmSvid,
    private readonly renew: () => Promise<void>,
  ) {}

  /** Arm (or re-arm) the timer for the current SVID's renewal point. */
  schedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    const due = renewalDue(this.current());
    const wait = due - Date.now();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (Date.now() < due) return this.schedule();
        this.renew().then(
          () => this.schedule(),
          (e: unknown) => {
            console.error(`WFM SVID renewal failed, retrying in 60 s: ${e}`);
            if (this.closed) return;
            this.timer = setTimeout(() => this.schedule(), RETRY_MS);
            this.timer.unref();
          },
        );
      },
      // At least a second apart, so a clock jump can never turn renewal into a busy loop.
      Math.max(1000, Math.min(wait, MAX_TIMER_MS)),
    );
    this.timer.unref();
  }

  /** Stop for good: a closed identity must not keep the process alive or write files. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
