import { X509Certificate } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { Agent, request } from "node:https";
import { isIP } from "node:net";
import type { PeerCertificate, SecureVersion, TLSSocket } from "node:tls";

/** PEM material a test client presents; `admin.ClientCredentials` fits it field by field. */
export interface ClientPem {
  certificateChainPem: string;
  privateKeyPem: string;
}

export interface MtlsClientOptions {
  port: number;
  host?: string;
  /** The WFM's trust bundle (PEM anchors) used to verify the server. */
  trustBundlePem: string;
  /** The SPIFFE ID the server must present (item 8); checked instead of the hostname. */
  expectedServerId: string;
  /** Omit to connect without any client certificate (item 3 tests). */
  client?: ClientPem;
  keepAlive?: boolean;
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
}

export interface MtlsResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Exact body bytes as received (still content-encoded if the server compressed). */
  body: Buffer;
  /** TLS version negotiated, e.g. "TLSv1.3". */
  protocol: string | null;
  /** The server's leaf SPIFFE ID (URI SAN). */
  serverSpiffeId: string | undefined;
  /** The server leaf's serial, to tell SVIDs apart across rotation. */
  serverSerial: string | undefined;
}

export interface RequestOptions {
  headers?: Record<string, string | string[]>;
  body?: Buffer | string;
}

/** The one URI SAN of a certificate, or undefined. */
export function uriSan(cert: PeerCertificate | X509Certificate): string | undefined {
  const san = cert instanceof X509Certificate ? cert.subjectAltName : cert.subjectaltname;
  const m = /URI:([^,\s]+)/.exec(san ?? "");
  return m?.[1];
}

/**
 * An HTTPS/1.1 client with a WFM client SVID, verifying the server the way a Margo agent must:
 * chain to the bundle, then the exact WFM SPIFFE ID rather than a hostname (digest 5.3). Returns
 * raw bytes and headers so tests can check ETags against exact bodies.
 */
export class MtlsClient {
  readonly agent: Agent;
  constructor(readonly options: MtlsClientOptions) {
    const expected = options.expectedServerId;
    const host = options.host ?? "127.0.0.1";
    this.agent = new Agent({
      keepAlive: options.keepAlive ?? false,
      maxSockets: 1,
      ca: options.trustBundlePem,
      ...(options.client
        ? { cert: options.client.certificateChainPem, key: options.client.privateKeyPem }
        : {}),
      ...(options.minVersion ? { minVersion: options.minVersion } : {}),
      ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
      // SNI carries DNS names only (RFC 6066 3); an IP there is deprecated in Node (DEP0123).
      ...(isIP(host) === 0 ? { servername: host } : {}),
      checkServerIdentity: (_host, cert) => {
        const id = uriSan(cert);
        return id === expected
          ? undefined
          : new Error(`server SPIFFE ID ${id ?? "(none)"} is not ${expected}`);
      },
    });
  }

  request(method: string, path: string, opts: RequestOptions = {}): Promise<MtlsResponse> {
    return new Promise((resolve, reject) => {
      const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
      const req = request(
        {
          host: this.options.host ?? "127.0.0.1",
          port: this.options.port,
          method,
          path,
          agent: this.agent,
          headers: {
            ...(body !== undefined ? { "content-length": String(body.length) } : {}),
            ...(opts.headers ?? {}),
          },
        },
        (res) => {
          // Read TLS facts now: after "end" a keep-alive agent may already have detached the socket.
          const socket = res.socket as TLSSocket;
          const peer = socket.getPeerCertificate();
          const protocol = socket.getProtocol();
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
              protocol,
              serverSpiffeId: uriSan(peer),
              serverSerial: peer.serialNumber,
            });
          });
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  get(path: string, headers?: Record<string, string>): Promise<MtlsResponse> {
    return this.request("GET", path, headers ? { headers } : {});
  }

  /** PUT/POST a JSON value (or raw text) with Content-Type application/json. */
  sendJson(method: "PUT" | "POST", path: string, json: unknown): Promise<MtlsResponse> {
    const body = typeof json === "string" ? json : JSON.stringify(json);
    return this.request(method, path, {
      headers: { "content-type": "application/json" },
      body,
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Parse a JSON body (problem details, manifests) for assertions. */
export function jsonOf(res: MtlsResponse): Record<string, unknown> {
  return JSON.parse(res.body.toString("utf8")) as Record<string, unknown>;
}
