import { join } from "node:path";
import type { PeerCertificate } from "node:tls";
import {
  type CallOptions,
  type ClientUnaryCall,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import { admin } from "@margo/proto";
import { loadConfig, type WfmConfig } from "../config.js";
import { OPERATOR_DIR, readCredentialFiles } from "./credential-files.js";
import { DataDirError, type ProblemField, WfmRequestError, WfmUnreachableError } from "./errors.js";
import { readRunInfo } from "./run-file.js";

/**
 * The CLI's side of the admin gRPC service: mTLS with the operator SVID from `<dataDir>/operator/`,
 * the server accepted only if its certificate carries the WFM's SPIFFE ID (hostnames are not the
 * identity in SPIFFE), and every failure turned into one of the CLI's named errors.
 */

/** Trailing metadata key the gRPC edge uses for the problem+json body (grpc/status.ts). */
const PROBLEM_METADATA_KEY = "margo-problem-bin";

/** Registration pulls a package from a registry, which can take a while; the rest is quick. */
export const DEFAULT_DEADLINE_MS = 15_000;
export const REGISTER_DEADLINE_MS = 120_000;

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

export interface AdminConnection {
  readonly config: WfmConfig;
  /** host:port dialled, for messages. */
  readonly target: string;
  readonly client: admin.WfmAdminServiceClient;
  call<Req, Res>(method: Unary<Req, Res>, request: Req, deadlineMs?: number): Promise<Res>;
  close(): void;
}

/** The SPIFFE ID the WFM's SVID must carry (digest 5.1). */
export function wfmSpiffeId(config: Pick<WfmConfig, "trustDomain" | "wfmId">): string {
  return `spiffe://${config.trustDomain}/margo/wfm/${config.wfmId}`;
}

/** A wildcard bind address is not dialable; the WFM is reached over loopback then. */
function dialHost(host: string): string {
  if (host === "0.0.0.0" || host === "" || host === "::") return "127.0.0.1";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** Loads the data dir's config, live address and operator credentials, and opens a channel. */
export async function connectAdmin(dataDir: string): Promise<AdminConnection> {
  let config: WfmConfig;
  try {
    config = await loadConfig(dataDir);
  } catch (e) {
    throw new DataDirError(
      `cannot read ${join(dataDir, "wfm.json")} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): run \`margo-wfm init --data-dir ${dataDir} ...\` first, or pass the folder you initialised`,
    );
  }
  const run = await readRunInfo(dataDir);
  const address = run?.grpc ?? config.grpc;
  if (address.port === 0) {
    throw new WfmUnreachableError(
      `the WFM of ${dataDir} is not running (no live ${join(dataDir, "run.json")}, and wfm.json asks for any free port): start it with \`margo-wfm serve --data-dir ${dataDir}\``,
    );
  }
  const pem = await readCredentialFiles(join(dataDir, OPERATOR_DIR));
  const expected = wfmSpiffeId(config);
  const creds = credentials.createSsl(
    Buffer.from(pem.trustBundlePem),
    Buffer.from(pem.privateKeyPem),
    Buffer.from(pem.certificateChainPem),
    { checkServerIdentity: (_host, cert) => checkWfmIdentity(cert, expected) },
  );
  const target = `${dialHost(address.host)}:${address.port}`;
  // SNI must be a DNS name (RFC 6066; Node warns on an IP). It is only a hint: the server is
  // authenticated by its SPIFFE ID above, so any name the WFM SVID carries will do.
  const sni = config.hostnames.find((h) => /[a-z]/i.test(h) && !h.includes(":")) ?? "localhost";
  const client = new admin.WfmAdminServiceClient(target, creds, {
    "grpc.ssl_target_name_override": sni,
  });
  return {
    config,
    target,
    client,
    call<Req, Res>(method: Unary<Req, Res>, request: Req, deadlineMs = DEFAULT_DEADLINE_MS) {
      return new Promise<Res>((resolve, reject) => {
        method.call(
          client,
          request,
          new Metadata(),
          { deadline: Date.now() + deadlineMs },
          (err, res) => {
            if (err) reject(translateError(err, target, dataDir, deadlineMs));
            else resolve(res);
          },
        );
      });
    },
    close: () => client.close(),
  };
}

/** SPIFFE authentication of the server: exactly one URI SAN, equal to the WFM's SPIFFE ID. */
export function checkWfmIdentity(cert: PeerCertificate, expected: string): Error | undefined {
  const uris = (cert.subjectaltname ?? "")
    .split(/,\s*/)
    .filter((san) => san.startsWith("URI:"))
    .map((san) => san.slice(4));
  if (uris.length === 1 && uris[0] === expected) return undefined;
  return new Error(
    `the server presented ${uris.length ? uris.join(", ") : "no SPIFFE ID"}, not ${expected}`,
  );
}

interface ProblemJson {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: ProblemField[];
}

function problemOf(metadata: Metadata | undefined): WfmRequestError["problem"] {
  const raw = metadata?.get(PROBLEM_METADATA_KEY)[0];
  if (raw === undefined) return undefined;
  try {
    const p = JSON.parse(Buffer.isBuffer(raw) ? raw.toString("utf8") : raw) as ProblemJson;
    return {
      type: p.type ?? "about:blank",
      title: p.title ?? "",
      status: p.status ?? 0,
      ...(p.detail !== undefined ? { detail: p.detail } : {}),
      errors: Array.isArray(p.errors) ? p.errors : [],
    };
  } catch {
    return undefined;
  }
}

/** Connection failures become exit 3 with the fix; anything the WFM itself answered is exit 1. */
export function translateError(
  err: ServiceError,
  target: string,
  dataDir: string,
  deadlineMs: number,
): Error {
  const problem = problemOf(err.metadata);
  if (!problem && err.code === status.UNAVAILABLE) {
    return new WfmUnreachableError(
      `cannot reach the WFM at ${target} (${err.details}): is \`margo-wfm serve --data-dir ${dataDir}\` running?`,
    );
  }
  if (!problem && err.code === status.DEADLINE_EXCEEDED) {
    return new WfmUnreachableError(
      `the WFM at ${target} did not answer within ${deadlineMs / 1000} s: is it overloaded or stuck? (check the \`serve\` output)`,
    );
  }
  if (!problem && err.code === status.UNAUTHENTICATED) {
    return new WfmUnreachableError(
      `the WFM at ${target} refused the operator credentials (${err.details}): were they issued by this WFM's trust domain? Re-run \`margo-wfm init\` in a fresh folder if the CA was replaced`,
    );
  }
  const message = problem
    ? [problem.title || status[err.code], problem.detail].filter(Boolean).join(": ")
    : `${status[err.code] ?? err.code}: ${err.details}`;
  return new WfmRequestError(message, err.code, problem);
}
