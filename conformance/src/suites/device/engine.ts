import Docker from "dockerode";
import type { CheckTools } from "../../core/types.js";
import type { EngineContainer, ObservedEngine } from "./context.js";

/**
 * The Compose host's Docker Engine as the checks see it: what really runs, independent of what
 * the device reports (device.reconcile judges from here only). Every read is kept as `docker`
 * evidence so a vendor sees the containers the verdict was based on.
 */

/** `unix:///path` -> `/path` (dockerode wants the bare socket path). */
export function socketPathOf(dockerHost: string): string {
  return dockerHost.replace(/^unix:\/\//, "");
}

export function observedEngine(dockerHost: string): ObservedEngine {
  const docker = new Docker({ socketPath: socketPathOf(dockerHost) });
  return {
    dockerHost,
    async containers(t: CheckTools): Promise<EngineContainer[]> {
      const list = await docker.listContainers({ all: true });
      const out = await Promise.all(
        list.map(async (c): Promise<EngineContainer | undefined> => {
          try {
            const i = await docker.getContainer(c.Id).inspect();
            return {
              id: c.Id,
              name: (i.Name ?? "").replace(/^\//, ""),
              image: i.Config?.Image ?? c.Image,
              state: i.State?.Status ?? c.State,
              exitCode: i.State?.ExitCode ?? 0,
              startedAt: i.State?.StartedAt ?? "",
              labels: i.Config?.Labels ?? c.Labels ?? {},
              env: i.Config?.Env ?? [],
            };
          } catch {
            // Removed between list and inspect: it is not there any more.
            return undefined;
          }
        }),
      );
      const containers = out.filter((c): c is EngineContainer => c !== undefined);
      t.evidence({
        kind: "docker",
        at: new Date().toISOString(),
        what: "containers",
        // Env can hold secrets; the names are enough to judge (values of OTEL_* kept).
        data: containers.map((c) => ({
          ...c,
          env: c.env.map((e) => (e.startsWith("OTEL_") ? e : `${e.split("=")[0]}=...`)),
        })),
      });
      return containers;
    },
    async removeContainer(t: CheckTools, id: string): Promise<void> {
      await docker.getContainer(id).remove({ force: true });
      t.evidence({
        kind: "docker",
        at: new Date().toISOString(),
        what: "remove container (drift)",
        data: { id },
      });
    },
  };
}
