import type { ChildProcess } from "node:child_process";

/**
 * SIGKILL `child` when this test process exits while the child still runs. A test or benchmark
 * that throws before its dispose() would otherwise leave a `margo-wfm serve` or `margo-agent run`
 * behind for good (they were found running an hour later), holding ports, Docker containers and
 * CPU for every later run. `exit` listeners run on normal exit and after an uncaught exception.
 */
export function reapOnExit(child: ChildProcess): void {
  const reap = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.once("exit", reap);
  child.once("exit", () => process.removeListener("exit", reap));
}
