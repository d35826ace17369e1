import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

/**
 * Shared set-up of the OCI tests: they run against the real registry and the real oras CLI that
 * scripts/bootstrap.sh provides, and fail (never skip) with the command to run when either is
 * missing, so a green run always means the interop was really exercised.
 */

const run = promisify(execFile);

export const REGISTRY = process.env.MARGO_REGISTRY ?? "127.0.0.1:5000";
const HINT = "run `bash scripts/bootstrap.sh up` (scripts/test.sh does this first)";

/** requireRegistry throws unless GET /v2/ answers 200 on the test registry. */
export async function requireRegistry(): Promise<void> {
  let status = 0;
  try {
    status = (await fetch(`http://${REGISTRY}/v2/`, { signal: AbortSignal.timeout(3000) })).status;
  } catch (e) {
    throw new Error(`no OCI registry answers on ${REGISTRY} (${(e as Error).message}): ${HINT}`);
  }
  if (status !== 200)
    throw new Error(`GET http://${REGISTRY}/v2/ returned ${status}, not a registry: ${HINT}`);
}

/** requireOras throws unless the oras CLI is on PATH. */
export async function requireOras(): Promise<void> {
  try {
    await run("oras", ["version"]);
  } catch (e) {
    throw new Error(`the oras CLI is not available (${(e as Error).message}): ${HINT}`);
  }
}

/** oras runs the CLI and returns stdout as a Buffer; a failure carries oras's stderr. */
export async function oras(args: readonly string[], cwd?: string): Promise<Buffer> {
  try {
    const { stdout } = await run("oras", [...args], {
      cwd,
      encoding: "buffer",
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (e) {
    const err = e as Error & { stderr?: Buffer };
    throw new Error(`oras ${args.join(" ")} failed: ${err.stderr?.toString() ?? err.message}`);
  }
}

/** uniqueRepo gives each test run its own repository so reruns never see stale tags. */
export function uniqueRepo(name: string): string {
  return `margo-test/${name}-${randomBytes(4).toString("hex")}`;
}
