/**
 * A `nix` to put first on a PATH: it appends each run's arguments to a log, then execs the real nix, so a
 * test can prove what a host did or did not evaluate and build.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";

export interface NixRecorder {
  /** The directory to put first on PATH. */
  binDir: string;
  /** Each recorded run's arguments (after its niceness and a space, when asked for), one string per run, in order. */
  runs(): Promise<string[]>;
}

/** `niceness`: each run's line starts with the niceness it ran at, for tests of what runs at a low priority. */
export async function installNixRecorder(dir: string, options: { niceness?: boolean } = {}): Promise<NixRecorder> {
  const binDir = path.join(dir, "bin");
  const log = path.join(dir, "nix-runs.log");
  const realNix = execFileSync("sh", ["-c", "command -v nix"], { encoding: "utf8" }).trim();
  await fs.mkdir(binDir, { recursive: true });
  const line = options.niceness ? `printf '%s %s\\n' "$(nice)" "$*"` : `printf '%s\\n' "$*"`;
  await fs.writeFile(path.join(binDir, "nix"), `#!/bin/sh\n${line} >> '${log}'\nexec '${realNix}' "$@"\n`, { mode: 0o755 });
  return {
    binDir,
    runs: async () => (await fs.readFile(log, "utf8").catch(() => "")).split("\n").filter((line) => line !== ""),
  };
}
