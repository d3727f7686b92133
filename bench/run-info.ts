/**
 * What every result file in bench/results/ records about its run, so a figure
 * quoted from it can be traced: when, on which commit (and whether tracked
 * files other than the results and docs differed from it), on what machine and under
 * what load. The machine is often shared, so the load average is part of the
 * figure.
 */
import { execFile } from "node:child_process";
import * as os from "node:os";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = fileURLToPath(new URL("..", import.meta.url));
const exec = promisify(execFile);

export async function runInfo() {
  const git = async (...args: string[]) => (await exec("git", args, { cwd: root })).stdout.trim();
  // Results and docs do not change what is measured.
  const changed = await git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results", ":(exclude,glob)**/*.md");
  return {
    measured_at: new Date().toISOString(),
    commit: await git("rev-parse", "--short=12", "HEAD"),
    uncommitted_changes: changed !== "",
    machine: {
      cores: os.cpus().length,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      load_average_1_5_15: os.loadavg().map((n) => Math.round(n * 100) / 100),
    },
  };
}
