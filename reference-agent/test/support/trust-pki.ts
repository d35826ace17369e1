import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createRootCa,
  encodeAnchorsBundle,
  type MintedCertificate,
  mintSvid,
} from "@margo/proto/identity";
import { type AgentConfig, defaultConfig } from "../../src/config.js";
import type { AgentStore, ErrorRecord, TrustRecord } from "../../src/state/store.js";

/**
 * A throwaway trust domain for the transport and identity tests: a root, the agent's client SVID
 * in an identity folder, and helpers to run real HTTPS servers presenting any certificate. All
 * minted with @margo/proto/identity, so the certificates follow the same profile the WFM issues.
 */

export const TD = "example.org";
export const WFM_ID = `spiffe://${TD}/margo/wfm/wfm-1`;
export const CLIENT_ID = `spiffe://${TD}/margo/wfm/wfm-1/client/dev-1`;

export interface TestDomain {
  root: MintedCertificate;
  client: MintedCertificate;
  identityDir: string;
  /** Mint a server SVID under `issuer` (default the root) with any SPIFFE ID. */
  serverSvid(
    spiffeId?: string,
    extra?: { issuer?: MintedCertificate; notAfter?: Date; notBefore?: Date },
  ): Promise<MintedCertificate>;
  cleanup(): Promise<void>;
}

export function issuerOf(c: MintedCertificate) {
  return { certDer: c.certDer, privateKey: c.keys.privateKey };
}

/**
 * A root, a client SVID and an identity folder holding `svid.pem`, `svid.key` and the bundle
 * files chosen by `bundle` ("json", "pem", "both", "none").
 */
export async function makeDomain(
  opts: { bundle?: "json" | "pem" | "both" | "none"; clientId?: string; sequence?: bigint } = {},
): Promise<TestDomain> {
  const root = await createRootCa({ trustDomain: TD });
  const client = await mintSvid({ issuer: issuerOf(root), spiffeId: opts.clientId ?? CLIENT_ID });
  const identityDir = await mkdtemp(join(tmpdir(), "margo-t-identity-"));
  await writeFile(join(identityDir, "svid.pem"), client.certPem);
  await writeFile(join(identityDir, "svid.key"), client.keyPem, { mode: 0o600 });
  const which = opts.bundle ?? "json";
  if (which === "json" || which === "both")
    await writeFile(
      join(identityDir, "bundle.json"),
      encodeAnchorsBundle([root.certDer], { sequence: opts.sequence ?? 1n }),
    );
  if (which === "pem" || which === "both")
    await writeFile(join(identityDir, "bundle.pem"), root.certPem);
  return {
    root,
    client,
    identityDir,
    serverSvid: (spiffeId = WFM_ID, extra = {}) =>
      mintSvid({
        issuer: issuerOf(extra.issuer ?? root),
        spiffeId,
        ...(extra.notAfter ? { notAfter: extra.notAfter } : {}),
        ...(extra.notBefore ? { notBefore: extra.notBefore } : {}),
      }),
    cleanup: () => rm(identityDir, { recursive: true, force: true }),
  };
}

/** An AgentConfig pointing at `identityDir`; the WFM URL is overridden per test. */
export function testAgentConfig(
  identityDir: string,
  patch: Partial<AgentConfig> = {},
): AgentConfig {
  return {
    ...defaultConfig(join(identityDir, "state"), {
      deviceId: "dev-1",
      wfmUrl: "https://127.0.0.1:1",
      identityDir,
    }),
    ...patch,
  };
}

/**
 * The slice of AgentStore identity and trust use, in memory. A unit-level fake of the storage
 * boundary: the SQLite store has its own tests; here only trust persistence and error records
 * matter.
 */
export class MemoryTrustStore {
  trust: TrustRecord | undefined;
  errors: ErrorRecord[] = [];
  readTrust(): TrustRecord | undefined {
    return this.trust;
  }
  saveTrust(t: TrustRecord): void {
    this.trust = t;
  }
  recordError(kind: string, message: string): void {
    this.errors.push({ at: Date.now(), kind, message });
  }
  recentErrors(limit: number): ErrorRecord[] {
    return this.errors.slice(-limit).reverse();
  }
  asStore(): AgentStore {
    return this as unknown as AgentStore;
  }
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

export interface TestServer {
  url: string;
  port: number;
  /** Requests that reached the handler (after a completed handshake). */
  requests: Array<{ method: string; url: string; headers: IncomingMessage["headers"] }>;
  setHandler(h: Handler): void;
  close(): Promise<void>;
}

/**
 * A real HTTPS server on 127.0.0.1:0 presenting `cert` (chain PEM) with `key`. With `clientCa`
 * it asks for (but does not require) a client certificate, like a Management Interface would.
 */
export async function startServer(opts: {
  certPem: string;
  keyPem: string;
  clientCaPem?: string;
  handler?: Handler;
}): Promise<TestServer> {
  let handler: Handler = opts.handler ?? ((_q, res) => res.writeHead(404).end());
  const requests: TestServer["requests"] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer(
    {
      cert: opts.certPem,
      key: opts.keyPem,
      ...(opts.clientCaPem
        ? { ca: opts.clientCaPem, requestCert: true, rejectUnauthorized: false }
        : {}),
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
        handler(req, res, Buffer.concat(chunks));
      });
    },
  );
  server.on("secureConnection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    requests,
    setHandler: (h) => {
      handler = h;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
