import { request } from "node:http";

/**
 * The few Docker Engine API calls the Compose provider needs, spoken over the engine's unix
 * socket with node:http. Why not dockerode: importing it (docker-modem, ssh2) costs ~29 MB of
 * RSS, half the idle agent's 60 MB budget, and the drift check runs every few seconds so a lazy
 * import would not keep it out. These are plain documented Engine API v1.41 endpoints (Docker 20.10).
 */

/** One row of GET /containers/json (the members we read). */
export interface ContainerSummary {
  Id: string;
  Names: string[];
  Labels: Record<string, string>;
  /** created | restarting | running | removing | paused | exited | dead */
  State: string;
  /** e.g. "Up 3 seconds (health: starting)", "Exited (1) 2 seconds ago". */
  Status: string;
}

/** The members of GET /containers/{id}/json we read. */
export interface ContainerInspect {
  Id: string;
  Name: string;
  RestartCount: number;
  State: {
    Status: string;
    Running: boolean;
    Restarting: boolean;
    ExitCode: number;
    Dead: boolean;
    /** RFC 3339; "0001-01-01T00:00:00Z" when never started. */
    StartedAt: string;
    Health?: { Status: "starting" | "healthy" | "unhealthy" | "none" };
  };
  Config: { Env: string[] | null; Labels: Record<string, string> | null };
  /** Restart policy name: "" or "no", "on-failure", "always", "unless-stopped". */
  HostConfig?: { RestartPolicy?: { Name: string } };
}

/** DockerApiError carries the HTTP status so callers can treat 404 as "already gone". */
export class DockerApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "DockerApiError";
  }
}

/** Label filters in the Engine's `filters` query form: `key` or `key=value`. */
export type LabelFilter = Record<string, string | true>;

function labelFilters(labels: LabelFilter): string {
  const list = Object.entries(labels).map(([k, v]) => (v === true ? k : `${k}=${v}`));
  return encodeURIComponent(JSON.stringify({ label: list }));
}

/** DockerApi talks to one engine socket; every call is one short HTTP request. */
export class DockerApi {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 15_000,
  ) {}

  private call(method: string, path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: this.socketPath, method, path, timeout: this.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
          );
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`docker ${method} ${path}: timed out`)));
      req.on("error", reject);
      req.end();
    });
  }

  private async json<T>(method: string, path: string, ok: number[] = [200]): Promise<T> {
    const res = await this.call(method, path);
    if (!ok.includes(res.status)) throw this.failure(method, path, res);
    return (res.body === "" ? undefined : JSON.parse(res.body)) as T;
  }

  private failure(method: string, path: string, res: { status: number; body: string }) {
    let message = res.body.trim();
    try {
      message = (JSON.parse(res.body) as { message?: string }).message ?? message;
    } catch {
      // Not JSON: keep the raw text.
    }
    return new DockerApiError(res.status, `docker ${method} ${path}: ${res.status} ${message}`);
  }

  /** GET /_ping: resolves when the engine answers. */
  async ping(): Promise<void> {
    const res = await this.call("GET", "/_ping");
    if (res.status !== 200) throw this.failure("GET", "/_ping", res);
  }

  /** GET /version: engine and API version. */
  version(): Promise<{ Version: string; ApiVersion: string }> {
    return this.json("GET", "/version");
  }

  /** Every container (also stopped ones) carrying all the given labels. */
  listContainers(labels: LabelFilter): Promise<ContainerSummary[]> {
    return this.json("GET", `/containers/json?all=1&filters=${labelFilters(labels)}`);
  }

  inspectContainer(id: string): Promise<ContainerInspect> {
    return this.json("GET", `/containers/${encodeURIComponent(id)}/json`);
  }

  /** Force-remove a container and its anonymous volumes; a missing one counts as removed. */
  async removeContainer(id: string): Promise<void> {
    await this.json("DELETE", `/containers/${encodeURIComponent(id)}?force=1&v=1`, [204, 404]);
  }

  listNetworks(labels: LabelFilter): Promise<Array<{ Id: string; Name: string }>> {
    return this.json("GET", `/networks?filters=${labelFilters(labels)}`);
  }

  async removeNetwork(id: string): Promise<void> {
    await this.json("DELETE", `/networks/${encodeURIComponent(id)}`, [204, 404]);
  }

  async listVolumes(labels: LabelFilter): Promise<Array<{ Name: string }>> {
    const r = await this.json<{ Volumes: Array<{ Name: string }> | null }>(
      "GET",
      `/volumes?filters=${labelFilters(labels)}`,
    );
    return r.Volumes ?? [];
  }

  async removeVolume(name: string): Promise<void> {
    await this.json("DELETE", `/volumes/${encodeURIComponent(name)}?force=1`, [204, 404]);
  }
}
