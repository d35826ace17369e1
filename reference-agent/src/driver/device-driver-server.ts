import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import {
  type handleUnaryCall,
  type Metadata,
  Server,
  ServerCredentials,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import * as deviceDriver from "@margo/proto/services/device-driver";
import type { AgentLog } from "../log.js";
import { type DeviceDriverBackend, SupervisorError } from "./supervisor.js";

/** Default token file inside the state directory when `driver.tokenFile` is unset. */
export const DRIVER_TOKEN_FILE = "driver.token";

export interface DeviceDriverServerOptions {
  host: string;
  /** 0 picks a free port (tests); the bound one is returned. */
  port: number;
  /** Operator-provided token file; required before listening beyond loopback. */
  tokenFile?: string;
  stateDir: string;
  log: AgentLog;
}

export interface DeviceDriverServer {
  readonly port: number;
  /** Where the bearer token lives (the suite reads it from there). */
  readonly tokenFile: string;
  close(): Promise<void>;
}

/** Listening beyond loopback was asked for without an operator-chosen token. */
export class DriverConfigError extends Error {
  override readonly name = "DriverConfigError";
}

/** True for 127.0.0.0/8, ::1 and "localhost". */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  const bare = host.replace(/^\[|\]$/g, "");
  if (isIP(bare) === 4) return bare.startsWith("127.");
  if (isIP(bare) === 6) return bare === "::1";
  return false;
}

/**
 * Read the bearer token, creating a random one (0600) if the file does not exist: the suite needs
 * a secret it can read from the device's state, and a default one would let any local process
 * reset the device.
 */
export async function ensureToken(file: string): Promise<string> {
  try {
    const text = (await readFile(file, "utf8")).trim();
    if (text.length >= 16) return text;
    throw new DriverConfigError(`${file}: token shorter than 16 characters`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const token = randomBytes(32).toString("base64url");
  await writeFile(file, `${token}\n`, { mode: 0o600, flag: "wx" }).catch(async (e) => {
    // Lost a race with another creator: theirs wins.
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  });
  return (await readFile(file, "utf8")).trim();
}

/**
 * Serve DeviceDriverService (the conformance suite's handle on this device) over plaintext gRPC
 * on loopback, every call authorised by `authorization: Bearer <token>`. Plaintext is acceptable
 * only because the socket never leaves the machine; beyond loopback the operator must choose the
 * token (and should front it with TLS).
 */
export async function startDeviceDriverServer(
  backend: DeviceDriverBackend,
  opts: DeviceDriverServerOptions,
): Promise<DeviceDriverServer> {
  if (!isLoopbackHost(opts.host) && opts.tokenFile === undefined) {
    throw new DriverConfigError(
      `driver.host ${opts.host} is not loopback: set driver.tokenFile to an operator-chosen token first`,
    );
  }
  const tokenFile = opts.tokenFile ?? join(opts.stateDir, DRIVER_TOKEN_FILE);
  const token = await ensureToken(tokenFile);
  const expected = createHash("sha256").update(`Bearer ${token}`).digest();
  const authorised = (md: Metadata): boolean => {
    const got = md.get("authorization")[0];
    if (typeof got !== "string") return false;
    return timingSafeEqual(createHash("sha256").update(got).digest(), expected);
  };

  const unary =
    <Req, Res>(name: string, fn: (req: Req) => Promise<Res> | Res): handleUnaryCall<Req, Res> =>
    (call, callback) => {
      if (!authorised(call.metadata)) {
        opts.log({
          level: "warn",
          msg: `DeviceDriver ${name} refused: bad or missing bearer token`,
          kind: "driver-unauthenticated",
        });
        callback(grpcError(status.UNAUTHENTICATED, "authorization: Bearer <token> required"));
        return;
      }
      Promise.resolve()
        .then(() => fn(call.request))
        .then(
          (res) => callback(null, res),
          (e: unknown) => {
            const err = toGrpc(e);
            opts.log({
              level: "warn",
              msg: `DeviceDriver ${name} failed: ${err.details}`,
              kind: "driver-call-failed",
            });
            callback(err);
          },
        );
    };

  const impl: deviceDriver.DeviceDriverServiceServer = {
    configure: unary("Configure", async (req: deviceDriver.ConfigureRequest) => {
      await backend.configure(req);
      return {};
    }),
    reset: unary("Reset", async () => {
      await backend.reset();
      return {};
    }),
    getState: unary("GetState", () => backend.state()),
    info: unary("Info", () => backend.info()),
  };

  const server = new Server();
  server.addService(deviceDriver.DeviceDriverServiceService, impl);
  const host = opts.host.includes(":") && !opts.host.startsWith("[") ? `[${opts.host}]` : opts.host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${opts.port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  opts.log({
    level: "info",
    msg: "DeviceDriver service listening",
    host: opts.host,
    port,
    tokenFile,
  });
  return {
    port,
    tokenFile,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // A suite that keeps a call open must not hold the agent's shutdown forever.
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000).unref();
      }),
  };
}

function grpcError(code: status, details: string): Partial<ServiceError> {
  return { code, details, message: details };
}

function toGrpc(e: unknown): Partial<ServiceError> & { details: string } {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof SupervisorError) {
    const code = {
      "invalid-argument": status.INVALID_ARGUMENT,
      "failed-precondition": status.FAILED_PRECONDITION,
      unavailable: status.UNAVAILABLE,
    }[e.code];
    return { code, details: message, message };
  }
  return { code: status.INTERNAL, details: message, message };
}
