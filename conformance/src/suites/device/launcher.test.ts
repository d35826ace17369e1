import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { driverAddressOf, LaunchError, launchDevice, readDriverToken } from "./launcher.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "margo-launch-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const launch = (command: string, readyTimeoutMs = 5_000) => ({
  command,
  readyTimeoutMs,
  env: { EXTRA: "x" },
});

describe("launcher", () => {
  it("reads driverAddress or driverPort from a JSON line, ignoring other lines", () => {
    expect(driverAddressOf('{"pid":1,"driverPort":4242}')).toBe("127.0.0.1:4242");
    expect(driverAddressOf('{"driverAddress":"127.0.0.2:9"}')).toBe("127.0.0.2:9");
    expect(driverAddressOf('{"driverPort":null}')).toBeUndefined();
    expect(driverAddressOf("listening on 4242")).toBeUndefined();
    expect(driverAddressOf("{not json")).toBeUndefined();
  });

  it("passes the harness env, learns the address, restarts and kills the whole process group", async () => {
    const cmd =
      'echo "$MARGO_CONFORMANCE_DOCKER_HOST $MARGO_CONFORMANCE_WORKDIR $EXTRA" > env.txt; echo starting; ' +
      'sleep 300 & echo $! >> kids.txt; echo oops >&2; echo "{\\"driverPort\\": $((RANDOM + 1000))}"; wait';
    const dev = await launchDevice({
      launch: launch(cmd),
      workDir: dir,
      dockerHost: "unix:///tmp/x.sock",
      log: () => {},
    });
    expect(dev.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect((await readFile(join(dir, "env.txt"), "utf8")).trim()).toBe(
      `unix:///tmp/x.sock ${dir} x`,
    );
    await dev.restart();
    await dev.close();
    const kids = (await readFile(join(dir, "kids.txt"), "utf8")).trim().split("\n").map(Number);
    expect(kids).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 100));
    // Gone, or a zombie waiting for a reaper (this container's init may not reap promptly).
    for (const pid of kids) {
      const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
      expect(stat === "" || / Z /.test(stat), `pid ${pid}: ${stat}`).toBe(true);
    }
    expect(await readFile(dev.logFile, "utf8")).toContain("oops");
  });

  it("fails with the log path when the command exits or never gets ready", async () => {
    await expect(
      launchDevice({ launch: launch("echo bye; exit 3"), workDir: dir, log: () => {} }),
    ).rejects.toThrow(/exited \(3\).*device\.log/);
    await expect(
      launchDevice({ launch: launch("sleep 5", 200), workDir: dir, log: () => {} }),
    ).rejects.toThrow(LaunchError);
  });

  it("reads the token from driver.token or a {workdir} token file", async () => {
    expect(await readDriverToken({ token: "abc" }, dir)).toBe("abc");
    await writeFile(join(dir, "t"), "secret-token\n");
    expect(await readDriverToken({ tokenFile: "{workdir}/t" }, dir)).toBe("secret-token");
  });
});
