import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import {
  createRootCa,
  encodeAnchorsBundle,
  type MintedCertificate,
  mintSvid,
  writeCredentials,
} from "@margo/proto/identity";
import {
  BUNDLE_MEDIA_TYPE,
  bundleUrl,
  deploymentUrl,
  encodeStateManifest,
  MANIFEST_MEDIA_TYPE,
} from "@margo/proto/wire";
import { buildBundle } from "../../../reference-wfm/src/core/bundle.js";

/**
 * A small HOSTILE WFM for the negative acceptance tests: real HTTPS with mutual TLS on loopback,
 * certificates minted with `@margo/proto/identity` in the agent's own trust domain, and a switch
 * for every way a WFM (or someone posing as one) can lie: a lower manifestVersion, a digest that
 * does not match the bytes served, a digest algorithm rc.3 does not allow, another SPIFFE ID, an
 * empty trust bundle. The reference WFM refuses to serve any of these, hence this stand-in.
 */

export const HOSTILE_TD = "example.org";
export const HOSTILE_WFM_ID = `spiffe://${HOSTILE_TD}/margo/wfm/wfm-1`;
export const OTHER_WFM_ID = `spiffe://${HOSTILE_TD}/margo/wfm/other`;

/** One deployment the hostile WFM lists. `digest` unset = the true sha256 of `yaml`. */
export interface HostileDeployment {
  deploymentId: string;
  yaml: string;
  /** What the manifest claims; set it to lie (tampered digest, sha512:...). */
  digest?: string;
  /** Bytes actually served at the url; unset = `yaml`. */
  servedYaml?: string;
}

export interface ReceivedStatus {
  deploymentId: string;
  body: Record<string, unknown>;
  at: number;
}

export interface HostileWfm {
  readonly managementUrl: string;
  readonly bundleUrl: string;
  /** The agent's identity folder (client SVID of this trust domain, provisioned bundle). */
  readonly identityDir: string;
  /** Serve this manifest from now on (a new ETag; keep-alive connections see it on the next poll). */
  setManifest(version: bigint, deployments: HostileDeployment[]): void;
  /** Present the WFM SVID (`wfm-1`) or the one of `other`; open connections are cut. */
  presentIdentity(which: "wfm" | "other"): void;
  /** Serve the provisioned bundle, or `{"keys":[]}` with a higher sequence. */
  serveBundle(which: "good" | "empty"): void;
  /** Status reports received, in order. */
  statuses(): ReceivedStatus[];
  /** GET /api/v1/deployments requests answered so far (200 and 304). */
  manifestPolls(): number;
  close(): Promise<void>;
}

export const sha256 = (s: string | Uint8Array) =>
  `sha256:${createHash("sha256").update(s).digest("hex")}`;

/** The ApplicationDeployment YAML of compose-single for one deployment (as the reference WFM writes it). */
export function composeSingleYaml(deploymentId: string, deviceId: string): string {
  const registry = process.env.MARGO_REGISTRY ?? "127.0.0.1:5000";
  return [
    `id: ${deploymentId}`,
    "metadata:",
    `  name: compose-single-${deploymentId.replaceAll("-", "").slice(0, 8)}`,
    "  namespace: margo",
    `  deviceId: ${deviceId}`,
    "spec:",
    "  applicationId: compose-single",
    "  deploymentProfile:",
    "    type: compose",
    "    components:",
    "      - name: hello",
    "        properties:",
    `          repository: oci://${registry}/margo-fixtures/compose-single/hello`,
    "          revision: 1.0.0",
    "          wait: true",
    "          timeout: 2m0s",
    "",
  ].join("\n");
}

export async function startHostileWfm(opts: { clientId: string }): Promise<HostileWfm> {
  const root = await createRootCa({ trustDomain: HOSTILE_TD });
  const issuer = { certDer: root.certDer, privateKey: root.keys.privateKey };
  const wfmSvid = await mintSvid({
    issuer,
    spiffeId: HOSTILE_WFM_ID,
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
  });
  const otherSvid = await mintSvid({
    issuer,
    spiffeId: OTHER_WFM_ID,
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
  });
  const clientSvid = await mintSvid({
    issuer,
    spiffeId: `${HOSTILE_WFM_ID}/client/${opts.clientId}`,
  });
  const goodBundle = encodeAnchorsBundle([root.certDer], { sequence: 1n, refreshHintSeconds: 1 });
  const emptyBundle = Buffer.from('{"keys":[],"spiffe_refresh_hint":1,"spiffe_sequence":2}');
  const identityDir = await mkdtemp(join(tmpdir(), "margo-agent-hostile-id-"));
  await writeCredentials(identityDir, {
    spiffeId: `${HOSTILE_WFM_ID}/client/${opts.clientId}`,
    certificateChainPem: clientSvid.certPem,
    privateKeyPem: clientSvid.keyPem,
    trustBundlePem: root.certPem,
    spiffeBundleJson: goodBundle,
    notAfter: clientSvid.notAfter,
  });

  const tlsOf = (svid: MintedCertificate) => ({ key: svid.keyPem, cert: svid.certPem });
  let manifest = { body: Buffer.alloc(0), etag: "" };
  const served = new Map<string, string | Buffer>();
  const received: ReceivedStatus[] = [];
  const seenStatus = new Set<string>();
  const seenCaps = new Set<string>();
  let polls = 0;
  let bundle: Buffer = goodBundle;

  const management = createServer(
    {
      ...tlsOf(wfmSvid),
      ca: root.certPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
    },
    (req, res) => {
      void readBody(req).then((body) => route(req, res, body));
    },
  );
  const route = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const url = new URL(req.url ?? "/", "https://x");
    const path = url.pathname;
    if (!(req.socket as TLSSocket).authorized) return send(res, 401, "text/plain", "no SVID");
    if (req.method === "GET" && path === "/api/v1/deployments") {
      polls++;
      if (req.headers["if-none-match"] === manifest.etag) {
        res.writeHead(304, { etag: manifest.etag });
        return res.end();
      }
      res.writeHead(200, { "content-type": MANIFEST_MEDIA_TYPE, etag: manifest.etag });
      return res.end(manifest.body);
    }
    const dep = served.get(path);
    if (req.method === "GET" && dep !== undefined) {
      const type = Buffer.isBuffer(dep) ? BUNDLE_MEDIA_TYPE : "application/yaml";
      return send(res, 200, type, dep);
    }
    const st = /^\/api\/v1\/deployments\/([^/]+)\/status$/.exec(path);
    if (req.method === "POST" && st?.[1]) {
      const id = decodeURIComponent(st[1]);
      received.push({ deploymentId: id, body: JSON.parse(body.toString("utf8")), at: Date.now() });
      const first = !seenStatus.has(id);
      seenStatus.add(id);
      res.writeHead(first ? 201 : 200);
      return res.end();
    }
    const cap = /^\/api\/v1\/capabilities\/([^/]+)$/.exec(path);
    if (req.method === "PUT" && cap?.[1]) {
      const first = !seenCaps.has(cap[1]);
      seenCaps.add(cap[1]);
      res.writeHead(first ? 201 : 200);
      return res.end();
    }
    return send(
      res,
      404,
      "application/problem+json",
      JSON.stringify({ type: "about:blank", title: "not found", status: 404 }),
    );
  };

  // The trust listener is server-only TLS (a device fetching trust has nothing to prove yet).
  const trust = createServer({ ...tlsOf(wfmSvid) }, (req, res) => {
    if (req.url === "/.well-known/spiffe/bundle.json") {
      return send(res, 200, "application/json", bundle);
    }
    return send(res, 404, "text/plain", "not found");
  });

  const sockets = new Set<Socket>();
  for (const s of [management, trust]) {
    s.on("connection", (sock: Socket) => {
      sockets.add(sock);
      sock.once("close", () => sockets.delete(sock));
    });
  }
  const mPort = await listen(management);
  const tPort = await listen(trust);

  return {
    managementUrl: `https://127.0.0.1:${mPort}`,
    bundleUrl: `https://127.0.0.1:${tPort}/.well-known/spiffe/bundle.json`,
    identityDir,
    setManifest(version, deployments) {
      served.clear();
      const refs = deployments.map((d) => {
        const digest = d.digest ?? sha256(d.yaml);
        const url = deploymentUrl(d.deploymentId, digest);
        served.set(url, d.servedYaml ?? d.yaml);
        return { deploymentId: d.deploymentId, digest, url };
      });
      // encodeStateManifest refuses a non-sha256 digest, so the lie replaces a placeholder.
      const honest = refs.map((r) => {
        if (r.digest.startsWith("sha256:")) return r;
        const digest = sha256(`placeholder:${r.deploymentId}`);
        return { ...r, digest, url: deploymentUrl(r.deploymentId, digest) };
      });
      // rc.3 requires a bundle whenever deployments are listed (item 43); it holds the bytes
      // actually served, so a lie is a lie on both paths the agent may take.
      const tarball =
        deployments.length > 0
          ? buildBundle(
              deployments.map((d) => ({
                name: `${d.deploymentId}.yaml`,
                bytes: Buffer.from(d.servedYaml ?? d.yaml),
              })),
            )
          : undefined;
      if (tarball) served.set(bundleUrl(sha256(tarball)), tarball);
      const bundle = tarball && {
        mediaType: BUNDLE_MEDIA_TYPE,
        digest: sha256(tarball),
        sizeBytes: BigInt(tarball.length),
        url: bundleUrl(sha256(tarball)),
      };
      let text = Buffer.from(
        encodeStateManifest({ manifestVersion: version, bundle, deployments: honest }),
      ).toString("utf8");
      refs.forEach((r, i) => {
        const h = honest[i];
        if (h && h.digest !== r.digest) text = text.replaceAll(h.digest, r.digest);
      });
      const body = Buffer.from(text);
      manifest = { body, etag: `"${sha256(body)}"` };
    },
    presentIdentity(which) {
      management.setSecureContext({
        ...tlsOf(which === "wfm" ? wfmSvid : otherSvid),
        ca: root.certPem,
        minVersion: "TLSv1.2",
      });
      // Pooled keep-alive connections would go on trusting the old handshake.
      for (const s of sockets) s.destroy();
    },
    serveBundle(which) {
      bundle = which === "good" ? goodBundle : emptyBundle;
    },
    statuses: () => [...received],
    manifestPolls: () => polls,
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([management, trust].map((s) => new Promise((r) => s.close(() => r(null)))));
      await rm(identityDir, { recursive: true, force: true });
    },
  };
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer) {
  res.writeHead(status, { "content-type": type });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}
