import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { WfmConfig } from "../config.js";
import type { ServedDocument, WfmIdentity } from "../identity/types.js";
import { mutant } from "../mutants.js";
import { capConnections, connectionLimitOptions } from "./connection-limits.js";
import { type EdgeLog, stderrLog } from "./log.js";
import { ifNoneMatchHits } from "./negotiation.js";
import { type ProblemResponse, problemResponse } from "./problem.js";
import { secureContextOptions } from "./tls-options.js";

export const DISCOVERY_PATH = "/.well-known/margo";
export const BUNDLE_SUFFIX = "/.well-known/spiffe/bundle.json";

export interface TrustServerOptions {
  identity: WfmIdentity;
  /** `managementLimits` bounds this listener too: it is open to clients without a certificate. */
  config: Pick<WfmConfig, "trust" | "trustPublicUrl" | "managementLimits">;
  log?: EdgeLog;
}

export interface RunningTrustServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Where the bundle is served: the path of `trustPublicUrl` (a reverse proxy may publish the MIS
 * under a prefix) plus the well-known suffix, matching discovery's trustBundleUri exactly.
 */
export function bundlePath(trustPublicUrl: string): string {
  const base = new URL(trustPublicUrl).pathname.replace(/\/+$/, "");
  return `${base}${BUNDLE_SUFFIX}`;
}

/**
 * The MIS endpoints (digest 5.5, item 17): discovery and the SPIFFE bundle over server-only TLS
 * (a client fetching trust material cannot present an SVID yet). `no-cache` lets clients keep a
 * copy for offline use but forces revalidation, so HTTP caching never defers a due refresh
 * (item 23); the ETag makes that revalidation a cheap 304.
 */
export async function startTrustServer(opts: TrustServerOptions): Promise<RunningTrustServer> {
  const { identity, config } = opts;
  const log = opts.log ?? stderrLog;
  const bundleAt = bundlePath(config.trustPublicUrl);
  const server = createServer({
    ...secureContextOptions(identity.serverTls(), { withClientCa: false }),
    ALPNProtocols: ["http/1.1"],
    // It reads no request bodies.
    ...connectionLimitOptions(config.managementLimits, 0),
  });
  capConnections(server, config.managementLimits.maxConnections, log, "trust-connections-dropped");
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  const unsubscribe = identity.onChange(() => {
    server.setSecureContext(secureContextOptions(identity.serverTls(), { withClientCa: false }));
  });

  const sendProblem = (res: ServerResponse, p: ProblemResponse) => {
    res.writeHead(p.status, { ...p.headers, "content-length": String(p.body.length) });
    res.end(p.body);
  };

  const serve = (req: IncomingMessage, res: ServerResponse, doc: ServedDocument) => {
    const headers: Record<string, string> = { etag: doc.etag, "cache-control": "no-cache" };
    if (mutant("bundle-endpoint-no-etag")) delete headers.etag;
    if (ifNoneMatchHits(req.headers["if-none-match"], doc.etag)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    headers["content-type"] = "application/json";
    headers["content-length"] = String(doc.body.length);
    res.writeHead(200, headers);
    res.end(doc.body);
  };

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const target = req.url ?? "/";
    const q = target.indexOf("?");
    const path = q < 0 ? target : target.slice(0, q);
    try {
      const doc =
        path === DISCOVERY_PATH
          ? () => identity.discoveryDocument()
          : path === bundleAt
            ? () => identity.spiffeBundle()
            : undefined;
      if (!doc) {
        // The OpenAPI's #spiffe-bundle-not-found is only an example, not a registered type.
        sendProblem(
          res,
          problemResponse({ status: 404, detail: "no such document", instance: path }),
        );
        return;
      }
      if (req.method !== "GET") {
        sendProblem(
          res,
          problemResponse({
            status: 405,
            detail: "only GET is served here",
            instance: path,
            headers: { allow: "GET" },
          }),
        );
        return;
      }
      serve(req, res, doc());
    } catch (err) {
      log("trust-request-failed", {
        path,
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
      sendProblem(res, problemResponse({ status: 500, detail: "internal error", instance: path }));
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.trust.port, config.trust.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      unsubscribe();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await closed;
    },
  };
}
