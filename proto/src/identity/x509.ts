// reflect-metadata must be evaluated before @peculiar/x509 is loaded (its ASN.1 schemas use
// decorators); a side-effect import stays in place when imports are sorted.
import "reflect-metadata";
import { createPrivateKey, randomBytes, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { derToPem } from "./pem.js";

// Moved to the light pem module (verifiers import it without the minting code); re-exported so
// existing imports of x509.js keep working.
export { certificateFingerprint, derToPem, pemToDer } from "./pem.js";

// The repo compiles without the DOM lib, so WebCrypto types come from node:crypto.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/**
 * Keys and certificates for X.509-SVIDs and their CAs (digest 5.2). The high-level helpers mint
 * only what the SVID profile allows; `mintCertificate` takes every knob separately so tests and the
 * conformance suite can build the deliberately broken certificates a verifier must refuse.
 */

/** P-256 is mandatory to implement (item 11); the others exist for interop and negative tests. */
export type KeyAlgorithm = "P-256" | "P-384" | "RSA-2048" | "RSA-3072";

export type KeyUsageName =
  | "digitalSignature"
  | "keyEncipherment"
  | "keyAgreement"
  | "keyCertSign"
  | "cRLSign";

export type ExtendedKeyUsageName = "serverAuth" | "clientAuth";

/** What can sign a certificate: its certificate and private key. */
export interface Issuer {
  certDer: Buffer;
  privateKey: CryptoKey;
}

/** A freshly minted certificate with the key pair it certifies. */
export interface MintedCertificate {
  certDer: Buffer;
  certPem: string;
  keys: CryptoKeyPair;
  /** PKCS#8 PEM of `keys.privateKey`. */
  keyPem: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

/** Every option of a certificate, including ones that make it an invalid SVID. */
export interface MintOptions {
  /** Distinguished name, e.g. `O=example.org, CN=root`. */
  subject: string;
  /** Absent: self-signed with `keys`. */
  issuer?: Issuer;
  /** The subject key pair; generated with `keyAlgorithm` (default P-256) when absent. */
  keys?: CryptoKeyPair;
  keyAlgorithm?: KeyAlgorithm;
  /** Default: one minute ago, so a slightly slow peer clock does not refuse a fresh certificate. */
  notBefore?: Date;
  /** Default: notBefore + lifetimeSeconds (+60 s for the back-dating). */
  notAfter?: Date;
  /** Default one day. */
  lifetimeSeconds?: number;
  /** basicConstraints cA; undefined leaves the extension out. */
  ca?: boolean;
  pathLength?: number;
  /** undefined leaves the extension out. */
  keyUsage?: KeyUsageName[];
  extendedKeyUsage?: ExtendedKeyUsageName[];
  uris?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
}

const BACKDATE_MS = 60_000;
const DAY = 24 * 3600;

const KEY_USAGE_BITS: Record<KeyUsageName, x509.KeyUsageFlags> = {
  digitalSignature: x509.KeyUsageFlags.digitalSignature,
  keyEncipherment: x509.KeyUsageFlags.keyEncipherment,
  keyAgreement: x509.KeyUsageFlags.keyAgreement,
  keyCertSign: x509.KeyUsageFlags.keyCertSign,
  cRLSign: x509.KeyUsageFlags.cRLSign,
};

const EKU_OIDS: Record<ExtendedKeyUsageName, string> = {
  serverAuth: x509.ExtendedKeyUsage.serverAuth,
  clientAuth: x509.ExtendedKeyUsage.clientAuth,
};

function keyGenParams(
  alg: KeyAlgorithm,
): webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams {
  switch (alg) {
    case "P-256":
    case "P-384":
      return { name: "ECDSA", namedCurve: alg };
    case "RSA-2048":
    case "RSA-3072":
      return {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: alg === "RSA-2048" ? 2048 : 3072,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      };
  }
}

/** Generate a key pair from the platform CSPRNG (digest 5.2 requires one). */
export async function generateKeyPair(alg: KeyAlgorithm = "P-256"): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(keyGenParams(alg), true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
}

/** The signature algorithm that goes with a signing key: SHA-384 for P-384, SHA-256 otherwise. */
function signingAlgorithm(key: CryptoKey): webcrypto.Algorithm | webcrypto.EcdsaParams {
  const alg = key.algorithm as webcrypto.EcKeyAlgorithm | webcrypto.RsaHashedKeyAlgorithm;
  if (alg.name === "ECDSA")
    return {
      name: "ECDSA",
      hash: (alg as webcrypto.EcKeyAlgorithm).namedCurve === "P-384" ? "SHA-384" : "SHA-256",
    };
  return alg;
}

/** A positive 127-bit serial from the CSPRNG (RFC 5280: at most 20 octets, positive). */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x01;
  return b.toString("hex");
}

/** Mint one certificate exactly as described; nothing is checked, so it can be broken on purpose. */
export async function mintCertificate(opts: MintOptions): Promise<MintedCertificate> {
  const keys = opts.keys ?? (await generateKeyPair(opts.keyAlgorithm));
  const notBefore = opts.notBefore ?? new Date(Date.now() - BACKDATE_MS);
  const notAfter =
    opts.notAfter ??
    new Date(notBefore.getTime() + (opts.lifetimeSeconds ?? DAY) * 1000 + BACKDATE_MS);
  const extensions: x509.Extension[] = [];
  if (opts.ca !== undefined)
    extensions.push(new x509.BasicConstraintsExtension(opts.ca, opts.pathLength, true));
  if (opts.keyUsage !== undefined) {
    const bits = opts.keyUsage.reduce((acc, u) => acc | KEY_USAGE_BITS[u], 0);
    extensions.push(new x509.KeyUsagesExtension(bits, true));
  }
  if (opts.extendedKeyUsage?.length)
    extensions.push(
      new x509.ExtendedKeyUsageExtension(opts.extendedKeyUsage.map((u) => EKU_OIDS[u])),
    );
  const names: x509.JsonGeneralName[] = [
    ...(opts.uris ?? []).map((value) => ({ type: "url" as const, value })),
    ...(opts.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(opts.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  // SPIFFE marks the SAN critical when the subject is empty; we always set a subject, so not here.
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(keys.publicKey));
  const serialNumber = randomSerial();
  let cert: x509.X509Certificate;
  if (opts.issuer) {
    const issuerCert = new x509.X509Certificate(opts.issuer.certDer);
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuerCert.publicKey));
    cert = await x509.X509CertificateGenerator.create({
      serialNumber,
      subject: opts.subject,
      issuer: issuerCert.subjectName,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: opts.issuer.privateKey,
      signingAlgorithm: signingAlgorithm(opts.issuer.privateKey),
      extensions,
    });
  } else {
    cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber,
      name: opts.subject,
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: signingAlgorithm(keys.privateKey),
      extensions,
    });
  }
  const certDer = Buffer.from(cert.rawData);
  return {
    certDer,
    certPem: derToPem(certDer),
    keys,
    keyPem: await exportPrivateKeyPem(keys.privateKey),
    serialNumber,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

/** A trust-domain root CA: cA=true, keyCertSign+cRLSign, self-signed; ten years by default. */
export async function createRootCa(opts: {
  trustDomain: string;
  commonName?: string;
  keyAlgorithm?: KeyAlgorithm;
  lifetimeSeconds?: number;
  notBefore?: Date;
  notAfter?: Date;
}): Promise<MintedCertificate> {
  return mintCertificate({
    subject: `O=${opts.trustDomain}, CN=${opts.commonName ?? "Margo root CA"}`,
    ca: true,
    keyUsage: ["keyCertSign", "cRLSign", "digitalSignature"],
    lifetimeSeconds: opts.lifetimeSeconds ?? 10 * 365 * DAY,
    ...pick(opts, ["keyAlgorithm", "notBefore", "notAfter"]),
  });
}

/** An intermediate CA below `issuer` (SVIDs from it carry it in their chain, item 12). */
export async function createIntermediateCa(opts: {
  issuer: Issuer;
  trustDomain: string;
  commonName?: string;
  keyAlgorithm?: KeyAlgorithm;
  lifetimeSeconds?: number;
  notBefore?: Date;
  notAfter?: Date;
}): Promise<MintedCertificate> {
  return mintCertificate({
    subject: `O=${opts.trustDomain}, CN=${opts.commonName ?? "Margo intermediate CA"}`,
    issuer: opts.issuer,
    ca: true,
    pathLength: 0,
    keyUsage: ["keyCertSign", "cRLSign", "digitalSignature"],
    lifetimeSeconds: opts.lifetimeSeconds ?? 365 * DAY,
    ...pick(opts, ["keyAlgorithm", "notBefore", "notAfter"]),
  });
}

/**
 * A leaf X.509-SVID as the profile requires (digest 5.2): exactly one URI SAN (the SPIFFE ID), cA
 * false, digitalSignature only, serverAuth+clientAuth so the same SVID works on either side of
 * mTLS. DNS/IP SANs are extra routing names for ordinary hostname checks; they never identify.
 */
export async function mintSvid(opts: {
  issuer: Issuer;
  spiffeId: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  keyAlgorithm?: KeyAlgorithm;
  keys?: CryptoKeyPair;
  lifetimeSeconds?: number;
  notBefore?: Date;
  notAfter?: Date;
}): Promise<MintedCertificate> {
  const td = opts.spiffeId.replace(/^spiffe:\/\//, "").split("/")[0] ?? "";
  return mintCertificate({
    subject: `O=${td}, CN=SPIFFE SVID`,
    issuer: opts.issuer,
    ca: false,
    keyUsage: ["digitalSignature"],
    extendedKeyUsage: ["serverAuth", "clientAuth"],
    uris: [opts.spiffeId],
    ...pick(opts, [
      "dnsNames",
      "ipAddresses",
      "keyAlgorithm",
      "keys",
      "lifetimeSeconds",
      "notBefore",
      "notAfter",
    ]),
  });
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** PKCS#8 PEM of a private key (the form node:tls and openssl read). */
export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  return derToPem(Buffer.from(await webcrypto.subtle.exportKey("pkcs8", key)), "PRIVATE KEY");
}

/**
 * Read a PKCS#8 (or SEC1/PKCS#1) private key PEM into a signing CryptoKey; the algorithm is taken
 * from the key itself so stored CA keys of any supported kind reopen without extra metadata.
 */
export async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const ko = createPrivateKey(pem);
  const der = ko.export({ format: "der", type: "pkcs8" });
  const details = ko.asymmetricKeyDetails ?? {};
  const params =
    ko.asymmetricKeyType === "ec"
      ? { name: "ECDSA", namedCurve: details.namedCurve === "secp384r1" ? "P-384" : "P-256" }
      : ko.asymmetricKeyType === "rsa"
        ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
        : undefined;
  if (!params) throw new Error(`unsupported private key type ${ko.asymmetricKeyType ?? "?"}`);
  return webcrypto.subtle.importKey("pkcs8", der, params, true, ["sign"]);
}
