/**
 * One-shot services (an init or migration job beside the long-running ones) end by design: a
 * container that exited 0 and that the engine will not restart did its work. Treating it like a
 * crashed server made wait time out (item 73) and made the drift check re-apply the component every
 * round, reporting installing/installed to the WFM over and over. A service that the engine is
 * told to keep running (`always`, `unless-stopped`) and that is nevertheless down is still drift.
 */

/** Restart policies under which an exit with code 0 is final (the engine starts nothing again). */
const FINAL_ON_SUCCESS = new Set(["", "no", "on-failure"]);

/**
 * Whether a container has completed: exited with code 0 under a restart policy that leaves it
 * exited. `restartPolicy` is HostConfig.RestartPolicy.Name ("" when the engine reports none, which
 * means "no").
 */
export function isCompleted(
  state: { Status: string; ExitCode: number },
  restartPolicy: string | undefined,
): boolean {
  return (
    state.Status === "exited" && state.ExitCode === 0 && FINAL_ON_SUCCESS.has(restartPolicy ?? "")
  );
}

/**
 * The exit code the container list shows in its Status ("Exited (0) 3 seconds ago"), so observe
 * inspects only the containers that may have completed instead of every container every round.
 */
export function exitCodeFromStatus(status: string): number | undefined {
  const m = /^Exited \((-?\d+)\)/.exec(status);
  return m ? Number(m[1]) : undefined;
}
