import { experimental, type ServerCredentials } from "@grpc/grpc-js";
import type { TlsMaterial, WfmIdentity } from "../identity/types.js";

type CertificateProvider = experimental.CertificateProvider;
type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/**
 * An in-memory grpc-js CertificateProvider fed by the WFM identity. grpc-js 1.14 re-applies the
 * provider's updates to its listening sockets with `setSecureContext`, so a CA or SVID rotation
 * takes effect for the next handshake while open connections keep serving: no restart, no
 * dropped calls. (`ServerCredentials.createSsl` takes fixed material and cannot rotate.)
 *
 * One object serves as both the CA and the identity provider: grpc-js 1.14.7 passes the two
 * providers to its constructor in swapped order, which is harmless only when they are the same.
 */
export class IdentityCertificateProvider implements CertificateProvider {
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private material: TlsMaterial;

  constructor(material: TlsMaterial) {
    this.material = material;
  }

  /** Push new material to every listener (called on identity.onChange). */
  update(material: TlsMaterial): void {
    this.material = material;
    for (const l of this.caListeners) l(this.caUpdate());
    for (const l of this.identityListeners) l(this.identityUpdate());
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    // grpc-js registers its own watcher only after adding the provider listeners, so the first
    // value must arrive after this call returns or the server would never see it.
    queueMicrotask(() => {
      if (this.caListeners.has(listener)) listener(this.caUpdate());
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.identityListeners.has(listener)) listener(this.identityUpdate());
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  private caUpdate(): experimental.CaCertificateUpdate {
    return { caCertificate: Buffer.from(this.material.anchorsPem) };
  }

  private identityUpdate(): experimental.IdentityCertificateUpdate {
    return {
      certificate: Buffer.from(this.material.certChainPem),
      privateKey: Buffer.from(this.material.keyPem),
    };
  }
}

/**
 * mTLS server credentials that follow the identity: a client certificate is required and must
 * chain to an anchor of the current bundle (a foreign-CA certificate fails the handshake and
 * never reaches a handler). Returns the unsubscribe function for the identity listener.
 */
export function rotatingServerCredentials(identity: WfmIdentity): {
  credentials: ServerCredentials;
  provider: IdentityCertificateProvider;
  stop: () => void;
} {
  const provider = new IdentityCertificateProvider(identity.serverTls());
  const stop = identity.onChange(() => provider.update(identity.serverTls()));
  const credentials = experimental.createCertificateProviderServerCredentials(
    provider,
    provider,
    true,
  );
  return { credentials, provider, stop };
}
