/**
 * `npm run demo` as a newcomer runs it: its script on a free PORT, then the
 * dashboard's API until four hosts report and the update PR has its lock diff
 * and green CI; both safeguards as the demo prints them — the fleet build fails
 * on db1, so Merge & Deploy is refused with fleet_build_failed until db1 is left
 * out (it then reads behind main), and web2 builds the update but fails to
 * activate it, so its wave stops the rollout and the revert opens; SIGTERM ends
 * every process the demo started and frees the port.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs/promises";
import { connect } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, expect, it, vi } from "vitest";
import { z } from "zod";
import { ErrorBody, HostView, RolloutView, UpdatePr } from "../../common/protocol.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { adminApi } from "../support/admin-api.ts";
import { freePort } from "../support/control-plane.ts";
import { eventuallyWith } from "../support/wait.ts";

vi.setConfig({ testTimeout: 120_000 });

const exec = promisify(execFile);
const DEMO = fileURLToPath(new URL("../../tools/fleet-kit/demo-cli.ts", import.meta.url));

interface Demo {
  child: ChildProcess;
  output: string[];
  exit: Promise<number | null>;
}

function runDemo(env: NodeJS.ProcessEnv): Demo {
  const child = spawn(process.execPath, [DEMO], { env, stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  child.stdout?.on("data", (data: Buffer) => output.push(data.toString()));
  child.stderr?.on("data", (data: Buffer) => output.push(data.toString()));
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output, exit };
}

/** Waits on the demo's API; the demo exiting meanwhile ends the wait at once, with what it printed. */
const waitsOn = (demo: Demo) =>
  eventuallyWith({
    timeoutMs: 90_000,
    intervalMs: 250,
    details: () => demo.output.join(""),
    giveUpWhen: () => (demo.child.exitCode !== null ? `the demo exited (${demo.child.exitCode})` : null),
  });

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

let running: Demo | null = null;

afterAll(async () => {
  // Only when an assertion failed before the test's own SIGTERM.
  if (running && running.child.exitCode === null) {
    running.child.kill("SIGTERM");
    await running.exit;
  }
});

it("without nix on PATH the demo says so and exits non-zero", async () => {
  const bin = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-demo-path-"));
  try {
    const git = (await exec("sh", ["-c", "command -v git"])).stdout.trim();
    await fs.symlink(git, path.join(bin, "git"));
    const demo = runDemo({ ...process.env, PATH: bin, PORT: String(await freePort()) });
    expect(await demo.exit).toBe(1);
    expect(demo.output.join("")).toContain("`nix` is not on PATH: install it (Debian/Ubuntu: apt-get install nix-bin");
  } finally {
    await fs.rm(bin, { recursive: true, force: true });
  }
});

describeWithNix("npm run demo", () => {
  it("four hosts report, the update PR has green CI; Merge & Deploy is refused while db1's build failed, without db1 web2's activation stops the rollout and the revert opens; SIGTERM ends everything", async () => {
    const port = await freePort();
    const startedAt = Date.now();
    const demo = runDemo({ ...process.env, PORT: String(port) });
    running = demo;
    const url = `http://127.0.0.1:${port}`;
    const call = adminApi(url);
    const eventually = waitsOn(demo);
    const hosts = async () => (await call(z.object({ hosts: z.array(HostView) }), "/api/hosts")).hosts;

    await eventually("four hosts reporting", async () => {
      const views = await hosts();
      return views.length === 4 && views.every((v) => v.online && v.report);
    });
    const pr = await eventually("the update PR with its lock diff and green CI", async () => {
      const { updatePrs } = await call(z.object({ updatePrs: z.array(UpdatePr) }), "/api/update-prs");
      return updatePrs.find((p) => p.state === "open" && p.ciState === "success" && p.lockDiff === "ready" && p.lockChanges.length > 0);
    });
    expect(pr.lockChanges.map((c) => [c.input, c.kind])).toEqual([["pins", "updated"]]);
    const readyAfter = Date.now() - startedAt;

    // What it printed: the dashboard, what runs, how to stop it.
    const printed = await eventually("the demo's summary", async () => (demo.output.join("").includes("Stop: Ctrl-C") ? demo.output.join("") : null));
    expect(printed).toContain(`Dashboard:       http://localhost:${port}`);
    expect(printed).toContain("db1 cannot build the new release: the fleet build fails there, and Merge & Deploy");
    expect(printed).toContain("web2 builds it but fails to activate it: after canary web1, its wave fails,");
    const dir = /all under (\S+)\):/.exec(printed)?.[1];
    expect(dir).toMatch(/nixfleet-demo-/);
    const pids = [...printed.matchAll(/^\s+(?:control plane|agent \w+)\s+pid (\d+)/gm)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(5);

    // The first safeguard: db1 cannot build the new release, so the fleet build holds the merge back.
    await eventually("every host on main before the update", async () => (await hosts()).every((v) => v.compartments.system.state === "green"));
    const build = await eventually("the fleet build to fail on db1 alone", async () => {
      const { updatePrs } = await call(z.object({ updatePrs: z.array(UpdatePr) }), "/api/update-prs");
      const found = updatePrs.find((p) => p.number === pr.number)?.fleetBuild;
      return found?.verdict === "failure" && found.finishedAt ? found : null;
    });
    expect(build.hosts.filter((h) => h.state === "failed").map((h) => h.name)).toEqual(["db1"]);
    const refused = await fetch(`${url}/api/update-prs/${pr.number}/merge-and-deploy`, { method: "POST", headers: { origin: url, "content-type": "application/json" }, body: "{}" });
    expect(refused.status).toBe(409);
    expect(ErrorBody.parse(await refused.json()).error).toMatchObject({ code: "fleet_build_failed", message: expect.stringContaining("failed on db1: leave it out of the chosen hosts") });

    // Without db1: the canary passes, web2 fails to activate the new release, the rollout stops there and the revert opens.
    const { rollout, merged } = await call(z.object({ rollout: RolloutView, merged: z.object({ sha: z.string() }) }), `/api/update-prs/${pr.number}/merge-and-deploy`, {
      body: { hosts: ["web1", "web2", "desk1"] },
    });
    expect(rollout.waves[0]).toMatchObject({ canary: true, hosts: [expect.objectContaining({ name: "web1" })] });
    expect(rollout.leftOut).toEqual([{ name: "db1", reason: expect.stringMatching(/^left behind on purpose: not selected, its build of [0-9a-f]{7} failed$/) }]);
    const done = await eventually("the rollout to end with its revert opened", async () => {
      const { rollout: view } = await call(z.object({ rollout: RolloutView }), `/api/rollouts/${rollout.id}`);
      return view.finishedAt && view.revert?.state === "opened" ? view : null;
    });
    expect(done.state).toBe("failed");
    expect(done.failure?.host).toBe("web2");
    const views = await hosts();
    const web2 = views.find((v) => v.name === "web2")!;
    expect(web2.compartments.system.state).toBe("red");
    expect(web2.compartments.system.reason).toContain("pull-switch failed");
    const db1 = views.find((v) => v.name === "db1")!;
    expect(db1.report?.repo.commit.value).not.toBe(merged.sha);
    expect(db1.compartments.git.reason).toMatch(/^behind main: /);

    // SIGTERM: everything it started ends, the port is free, its directory is gone.
    demo.child.kill("SIGTERM");
    expect(await demo.exit).toBe(0);
    expect(await listening(port)).toBe(false);
    expect(pids.filter(alive)).toEqual([]);
    const { stdout } = await exec("ps", ["-ww", "-eo", "pid=,args="]);
    expect(stdout.split("\n").filter((line) => line.includes(dir!))).toEqual([]);
    await expect(fs.stat(dir!)).rejects.toThrow();
    console.log(JSON.stringify({ demoReadyMs: readyAfter, totalMs: Date.now() - startedAt }));
  });
});
