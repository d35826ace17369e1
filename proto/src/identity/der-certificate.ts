import { constants, createPublicKey, type KeyObject, verify as verifySignature } from "node:crypto";

/**
 * A minimal DER reader for exactly the certificate fields SVID verification needs. It exists for
 * speed: node's X509Certificate costs ~0.3 ms to construct and @peculiar/x509 ~2-4 ms to parse,
 * while the Management Interface verifies a client chain on every new TLS connection. Anything
 * this reader does not understand is refused, never guessed.
 */

/** The certificate could not be read; the verifier reports it as `svid.malformed`. */
export class CertificateParseError extends Error {
  override readonly name = "CertificateParseError";
}

interface Tlv {
  tag: number;
  /** Offset of the first content byte. */
  start: number;
  /** Offset just past the content. */
  end: number;
  /** Offset of the tag byte (so `buf.subarray(head, end)` is the whole element). */
  head: number;
}

function readTlv(buf: Buffer, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new CertificateParseError("truncated DER element");
  const tag = buf[at] as number;
  if ((tag & 0x1f) === 0x1f) throw new CertificateParseError("multi-byte DER tags are not used");
  let len = buf[at + 1] as number;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new CertificateParseError("unsupported DER length");
    if (p + n > limit) throw new CertificateParseError("truncated DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p + i] as number);
    p += n;
  }
  if (p + len > limit) throw new CertificateParseError("DER element runs past its container");
  return { tag, start: p, end: p + len, head: at };
}

/** The children of a constructed element. */
function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.start; p < parent.end; ) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new CertificateParseError(`expected ${what}`);
  return t;
}

function oid(buf: Buffer, t: Tlv): string {
  const parts: number[] = [];
  let v = 0;
  for (let i = t.start; i < t.end; i++) {
    const b = buf[i] as number;
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join(".");
}

const UTC_TIME = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/;
const GENERALIZED_TIME = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/;

/** UTCTime (two-digit year, RFC 5280 pivot at 50) or GeneralizedTime, both in Z form only. */
function time(buf: Buffer, t: Tlv): Date {
  const s = buf.toString("latin1", t.start, t.end);
  const m = (t.tag === 0x17 ? UTC_TIME : t.tag === 0x18 ? GENERALIZED_TIME : undefined)?.exec(s);
  if (!m) throw new CertificateParseError(`unsupported time ${JSON.stringify(s)}`);
  const [y, mo, d, h, mi, sec] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const year = t.tag === 0x17 ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  return new Date(Date.UTC(year, mo - 1, d, h, mi, sec));
}

/** The fields of one certificate that path building and the SVID profile look at. */
export interface CertificateFacts {
  der: Buffer;
  /** DER of tbsCertificate: what the issuer signed. */
  tbs: Buffer;
  signatureAlgorithm: string;
  /** DER of the AlgorithmIdentifier parameters (RSASSA-PSS needs them). */
  signatureParams: Buffer | undefined;
  signature: Buffer;
  issuerDn: Buffer;
  subjectDn: Buffer;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  /** basicConstraints cA (false when the extension is absent). */
  ca: boolean;
  /** Key usage bits as in the DER BIT STRING: bit 0 (0x80 of the first byte) = digitalSignature. */
  keyUsage: { digitalSignature: boolean; keyCertSign: boolean; cRLSign: boolean } | undefined;
  uris: string[];
  subjectKeyId: Buffer | undefined;
  authorityKeyId: Buffer | undefined;
}

const EXT_SAN = "2.5.29.17";
const EXT_KU = "2.5.29.15";
const EXT_BC = "2.5.29.19";
const EXT_SKI = "2.5.29.14";
const EXT_AKI = "2.5.29.35";

/** Read a DER certificate; throws CertificateParseError. */
export function readCertificate(input: Uint8Array): CertificateFacts {
  const der = Buffer.isBuffer(input) ? input : Buffer.from(input);
  const cert = readTlv(der, 0, der.length);
  if (cert.tag !== 0x30 || cert.end !== der.length)
    throw new CertificateParseError("not a single DER SEQUENCE");
  const [tbsT, algT, sigT] = children(der, cert);
  expect(tbsT, 0x30, "tbsCertificate");
  const alg = children(der, expect(algT, 0x30, "signatureAlgorithm"));
  const sig = expect(sigT, 0x03, "signatureValue");
  const tbs = children(der, tbsT as Tlv);
  let i = 0;
  if (tbs[0]?.tag === 0xa0) i++; // version
  expect(tbs[i++], 0x02, "serialNumber");
  expect(tbs[i++], 0x30, "signature");
  const issuer = expect(tbs[i++], 0x30, "issuer");
  const validity = children(der, expect(tbs[i++], 0x30, "validity"));
  const subject = expect(tbs[i++], 0x30, "subject");
  const spki = expect(tbs[i++], 0x30, "subjectPublicKeyInfo");
  const [nb, na] = validity;
  if (!nb || !na) throw new CertificateParseError("validity needs two times");
  const facts: CertificateFacts = {
    der,
    tbs: der.subarray((tbsT as Tlv).head, (tbsT as Tlv).end),
    signatureAlgorithm: oid(der, expect(alg[0], 0x06, "algorithm OID")),
    signatureParams:
      alg[1] && alg[1].tag !== 0x05 ? der.subarray(alg[1].head, alg[1].end) : undefined,
    signature: der.subarray(sig.start + 1, sig.end),
    issuerDn: der.subarray(issuer.head, issuer.end),
    subjectDn: der.subarray(subject.head, subject.end),
    notBefore: time(der, nb),
    notAfter: time(der, na),
    spki: der.subarray(spki.head, spki.end),
    ca: false,
    keyUsage: undefined,
    uris: [],
    subjectKeyId: undefined,
    authorityKeyId: undefined,
  };
  for (; i < tbs.length; i++) {
    const t = tbs[i] as Tlv;
    if (t.tag !== 0xa3) continue; // issuer/subject unique ids
    const seq = expect(children(der, t)[0], 0x30, "extensions");
    const seen = new Set<string>();
    for (const e of children(der, seq)) readExtension(der, e, facts, seen);
  }
  return facts;
}

function readExtension(der: Buffer, e: Tlv, facts: CertificateFacts, seen: Set<string>): void {
  const parts = children(der, e);
  const id = oid(der, expect(parts[0], 0x06, "extension OID"));
  // RFC 5280: a certificate MUST NOT include more than one instance of an extension.
  if (seen.has(id)) throw new CertificateParseError(`extension ${id} appears twice`);
  seen.add(id);
  const value = parts[parts.length - 1];
  expect(value, 0x04, "extension value");
  const inner = readTlv(der, (value as Tlv).start, (value as Tlv).end);
  switch (id) {
    case EXT_SAN:
      for (const n of children(der, expect(inner, 0x30, "GeneralNames")))
        if (n.tag === 0x86) facts.uris.push(der.toString("latin1", n.start, n.end));
      break;
    case EXT_KU: {
      expect(inner, 0x03, "keyUsage BIT STRING");
      const b0 = inner.end > inner.start + 1 ? (der[inner.start + 1] as number) : 0;
      facts.keyUsage = {
        digitalSignature: (b0 & 0x80) !== 0,
        keyCertSign: (b0 & 0x04) !== 0,
        cRLSign: (b0 & 0x02) !== 0,
      };
      break;
    }
    case EXT_BC: {
      const bc = children(der, expect(inner, 0x30, "basicConstraints"));
      facts.ca = bc[0]?.tag === 0x01 && der[bc[0].start] !== 0;
      break;
    }
    case EXT_SKI:
      facts.subjectKeyId = der.subarray(inner.start, inner.end);
      break;
    case EXT_AKI: {
      const kid = children(der, expect(inner, 0x30, "authorityKeyIdentifier")).find(
        (c) => c.tag === 0x80,
      );
      if (kid) facts.authorityKeyId = der.subarray(kid.start, kid.end);
      break;
    }
  }
}

/** What the subject public key is, read from the SPKI without building a KeyObject (slow). */
export type KeyInfo =
  | { type: "ec"; curve: "P-256" | "P-384" | "P-521" | "other" }
  | { type: "rsa"; bits: number }
  | { type: "ed25519" }
  | { type: "other"; oid: string };

const CURVES: Record<string, "P-256" | "P-384" | "P-521"> = {
  "1.2.840.10045.3.1.7": "P-256",
  "1.3.132.0.34": "P-384",
  "1.3.132.0.35": "P-521",
};

/** Key type and size of a certificate's subject public key. */
export function keyInfoOf(c: CertificateFacts): KeyInfo {
  const spki = readTlv(c.spki, 0, c.spki.length);
  const [algT, bitsT] = children(c.spki, spki);
  const alg = children(c.spki, expect(algT, 0x30, "SPKI algorithm"));
  const algOid = oid(c.spki, expect(alg[0], 0x06, "SPKI algorithm OID"));
  switch (algOid) {
    case "1.2.840.10045.2.1": {
      const curve = alg[1]?.tag === 0x06 ? CURVES[oid(c.spki, alg[1])] : undefined;
      return { type: "ec", curve: curve ?? "other" };
    }
    case "1.2.840.113549.1.1.1":
    case "1.2.840.113549.1.1.10": {
      const bits = expect(bitsT, 0x03, "SPKI key");
      const rsa = readTlv(c.spki, bits.start + 1, bits.end);
      const n = expect(children(c.spki, rsa)[0], 0x02, "RSA modulus");
      let p = n.start;
      while (p < n.end && c.spki[p] === 0) p++;
      const top = c.spki[p] ?? 0;
      return { type: "rsa", bits: p < n.end ? (n.end - p - 1) * 8 + (32 - Math.clz32(top)) : 0 };
    }
    case "1.3.101.112":
      return { type: "ed25519" };
    default:
      return { type: "other", oid: algOid };
  }
}

/** The subject public key, parsed once per certificate object. */
const keyCache = new WeakMap<CertificateFacts, KeyObject>();
export function publicKeyOf(c: CertificateFacts): KeyObject {
  let k = keyCache.get(c);
  if (!k) {
    k = createPublicKey({ key: c.spki, format: "der", type: "spki" });
    keyCache.set(c, k);
  }
  return k;
}

/** True when `issuer`'s subject and key id match `c`'s issuer fields (no signature check). */
export function namesIssuer(c: CertificateFacts, issuer: CertificateFacts): boolean {
  if (!c.issuerDn.equals(issuer.subjectDn)) return false;
  if (c.authorityKeyId && issuer.subjectKeyId && !c.authorityKeyId.equals(issuer.subjectKeyId))
    return false;
  return true;
}

const HASHES: Record<string, string> = {
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};

function pssOptions(params: Buffer | undefined): { hash: string; saltLength: number } {
  // RFC 4055 defaults (SHA-1, salt 20) are refused: the SVID profile needs SHA-256 or better.
  if (!params) throw new CertificateParseError("RSASSA-PSS without parameters");
  const seq = readTlv(params, 0, params.length);
  let hash: string | undefined;
  let saltLength = 20;
  for (const f of children(params, seq)) {
    if (f.tag === 0xa0) {
      const algId = readTlv(params, f.start, f.end);
      hash = HASHES[oid(params, expect(children(params, algId)[0], 0x06, "hash OID"))];
    } else if (f.tag === 0xa2) {
      const n = readTlv(params, f.start, f.end);
      saltLength = params.readUIntBE(n.start, Math.min(n.end - n.start, 6));
    }
  }
  if (!hash) throw new CertificateParseError("RSASSA-PSS hash must be SHA-256, -384 or -512");
  return { hash, saltLength };
}

/** True when `issuerKey` signed `c` (ECDSA, RSA PKCS#1 v1.5, RSASSA-PSS, Ed25519). */
export function signedBy(c: CertificateFacts, issuerKey: KeyObject): boolean {
  try {
    switch (c.signatureAlgorithm) {
      case "1.2.840.10045.4.3.2":
        return verifySignature(
          "sha256",
          c.tbs,
          { key: issuerKey, dsaEncoding: "der" },
          c.signature,
        );
      case "1.2.840.10045.4.3.3":
        return verifySignature(
          "sha384",
          c.tbs,
          { key: issuerKey, dsaEncoding: "der" },
          c.signature,
        );
      case "1.2.840.10045.4.3.4":
        return verifySignature(
          "sha512",
          c.tbs,
          { key: issuerKey, dsaEncoding: "der" },
          c.signature,
        );
      case "1.2.840.113549.1.1.11":
        return verifySignature("sha256", c.tbs, issuerKey, c.signature);
      case "1.2.840.113549.1.1.12":
        return verifySignature("sha384", c.tbs, issuerKey, c.signature);
      case "1.2.840.113549.1.1.13":
        return verifySignature("sha512", c.tbs, issuerKey, c.signature);
      case "1.2.840.113549.1.1.10": {
        const { hash, saltLength } = pssOptions(c.signatureParams);
        return verifySignature(
          hash,
          c.tbs,
          { key: issuerKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength },
          c.signature,
        );
      }
      case "1.3.101.112":
        return verifySignature(null, c.tbs, issuerKey, c.signature);
      default:
        return false;
    }
  } catch {
    return false;
  }
}
