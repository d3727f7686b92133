/** What the benchmarks read about the processes they start (workerd's, the fronts'), from /proc. */
import { execFile } from "node:child_process";
import { readdir, readFile, readlink } from "node:fs/promises";
import { promisify } from "node:util";

export interface Descriptors {
  open: number;
  limit: number;
  sockets: number;
  distinctSockets: number;
}

/**
 * Descriptors a process holds open now and its limit (/proc/<pid>/fd, /proc/<pid>/limits), and how many of
 * them are sockets against how many distinct sockets they point to.
 */
export async function descriptorsOf(pid: number): Promise<Descriptors> {
  const limits = await readFile(`/proc/${pid}/limits`, "utf8");
  const limit = Number(/Max open files\s+(\d+)/.exec(limits)?.[1]);
  const targets = await Promise.all((await readdir(`/proc/${pid}/fd`)).map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => null)));
  const sockets = targets.filter((target) => target?.startsWith("socket:"));
  return { open: targets.length, limit, sockets: sockets.length, distinctSockets: new Set(sockets).size };
}

/** A process's resident set, from /proc. */
export async function rssOf(pid: number): Promise<number> {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1]);
  if (!kb) throw new Error(`no VmRSS for process ${pid}`);
  return kb * 1024;
}

/** /proc's unit of CPU time (`getconf CLK_TCK`; 100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds a process has used so far (user + system, every thread), from /proc/<pid>/stat. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  // Fields 14 and 15 (utime, stime) in clock ticks; the command name (field 2) may hold spaces, so count after its ")".
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** The workerd processes this process has started (Miniflare spawns one per instance). */
export async function workerdChildren(): Promise<number[]> {
  const { stdout } = await promisify(execFile)("pgrep", ["-P", String(process.pid), "-f", "workerd"]).catch(() => ({ stdout: "" }));
  return stdout.split("\n").filter(Boolean).map(Number);
}
