/**
 * `npm run bench:demo`: how long `npm run demo` takes to show a live fleet. Runs the demo's script on a
 * free PORT and measures, from the spawn:
 *  - four hosts reporting, and the update PR with its lock diff and green CI (the issue's target: 60 s);
 *  - the demo's "ready" line (every host has also switched to main);
 *  - Merge & Deploy (refused with fleet_build_failed while db1 is in scope, then to every host but db1)
 *    to the failed rollout (web2's activation), and SIGTERM to the demo's exit.
 * Baseline, in the same run: the control plane alone (migrations + `wrangler dev` answering
 * /api/health), the part of the demo that `npm start` also does.
 * Writes bench/results/demo.json.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ErrorBody, HostView, RolloutView, UpdatePr } from "../common/protocol.ts";
import { adminApi } from "../test/support/admin-api.ts";
import { freePort, startControlPlane } from "../test/support/control-plane.ts";
import { eventuallyWith } from "../test/support/wait.ts";
import { runInfo } from "./run-info.ts";

const DEMO = fileURLToPath(new URL("../tools/fleet-kit/demo-cli.ts", import.meta.url));
const seconds = (ms: number) => Math.round(ms / 100) / 10;

const until = eventuallyWith({ timeoutMs: 120_000, intervalMs: 100 });

const baselineStart = Date.now();
const plane = await startControlPlane();
const baselineMs = Date.now() - baselineStart;
await plane.stop();

const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const output: string[] = [];
const start = Date.now();
const demo = spawn(process.execPath, [DEMO], { env: { ...process.env, PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"] });
demo.stdout.on("data", (data: Buffer) => output.push(data.toString()));
demo.stderr.on("data", (data: Buffer) => output.push(data.toString()));
const exit = new Promise<number | null>((resolve) => demo.once("exit", (code) => resolve(code)));
const call = adminApi(url);

try {
  let reportingMs = 0;
  let prMs = 0;
  await until("four hosts reporting and the update PR green", async () => {
    if (!reportingMs) {
      const { hosts } = await call(z.object({ hosts: z.array(HostView) }), "/api/hosts");
      if (hosts.length === 4 && hosts.every((h) => h.online && h.report)) reportingMs = Date.now() - start;
    }
    if (!prMs) {
      const { updatePrs } = await call(z.object({ updatePrs: z.array(UpdatePr) }), "/api/update-prs");
      if (updatePrs.some((p) => p.ciState === "success" && p.lockDiff === "ready" && p.lockChanges.length > 0)) prMs = Date.now() - start;
    }
    return reportingMs > 0 && prMs > 0;
  });
  await until("the ready line", async () => output.join("").includes("NixFleet demo: ready"));
  const readyMs = Date.now() - start;

  const pr = await until("the fleet build to fail on db1", async () => {
    const { updatePrs } = await call(z.object({ updatePrs: z.array(UpdatePr) }), "/api/update-prs");
    return updatePrs.find((p) => p.fleetBuild?.verdict === "failure" && p.fleetBuild.finishedAt) ?? null;
  });
  const refused = await fetch(`${url}/api/update-prs/${pr.number}/merge-and-deploy`, { method: "POST", headers: { origin: url, "content-type": "application/json" }, body: "{}" });
  const refusal = ErrorBody.parse(await refused.json()).error.code;
  const deployStart = Date.now();
  const hosts = pr.fleetBuild!.hosts.filter((h) => h.state !== "failed").map((h) => h.name);
  const { rollout } = await call(z.object({ rollout: RolloutView }), `/api/update-prs/${pr.number}/merge-and-deploy`, { body: { hosts } });
  const done = await until("the rollout to end", async () => {
    const { rollout: view } = await call(z.object({ rollout: RolloutView }), `/api/rollouts/${rollout.id}`);
    return view.finishedAt ? view : null;
  });
  const deployMs = Date.now() - deployStart;

  const stopStart = Date.now();
  demo.kill("SIGTERM");
  const code = await exit;
  const stopMs = Date.now() - stopStart;

  const result = {
    ...(await runInfo()),
    baseline_control_plane_alone_seconds: seconds(baselineMs),
    four_hosts_reporting_seconds: seconds(reportingMs),
    update_pr_green_with_lock_diff_seconds: seconds(prMs),
    ready_line_seconds: seconds(readyMs),
    merge_and_deploy_to_rollout_end_seconds: seconds(deployMs),
    merge_and_deploy_with_db1: { status: refused.status, code: refusal },
    rollout: { hosts, left_out: done.leftOut, state: done.state, failed_host: done.failure?.host ?? null },
    sigterm_to_exit_seconds: seconds(stopMs),
    exit_code: code,
    targets: { four_hosts_reporting_seconds: 60, update_pr_green_with_lock_diff_seconds: 60 },
  };
  await fs.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await fs.writeFile(new URL("./results/demo.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
} catch (error) {
  console.error(output.join(""));
  throw error;
} finally {
  if (demo.exitCode === null) {
    demo.kill("SIGTERM");
    await exit;
  }
}
