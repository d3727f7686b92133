/**
 * Switch and rollback run as detached jobs: a switch may restart the agent's
 * own service, and must not take itself down with it. The job writes its
 * output to `jobs/<id>/output.log` and its exit status to `jobs/<id>/exit`;
 * the agent tails the log into output events and waits for the exit file.
 * A later agent process finds jobs without a reported result and follows them
 * to the end the same way.
 */
import { watch, type FSWatcher } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { sleep } from "./backoff.ts";
import type { CommandEventSender } from "./command-events.ts";
import type { JobMeta, JobStore } from "./job-store.ts";
import type { Logger } from "./logger.ts";
import type { DetachMode, HostRunner } from "./runner.ts";

/** How a followed job ended. */
export type JobEnd =
  | { kind: "exited"; exitCode: number }
  /** A `stop` ended it. */
  | { kind: "cancelled"; killed: boolean }
  /** It is gone and left no exit status (killed from outside, host rebooted). */
  | { kind: "vanished" }
  /** The agent is stopping; the job goes on and the next agent process follows it. */
  | { kind: "left-running" };

export interface DetachedJobsOptions {
  store: JobStore;
  runner: HostRunner;
  events: Pick<CommandEventSender, "output" | "mark" | "setNextSeq">;
  logger: Logger;
  mode: DetachMode;
  /** How often the log and the exit file are looked at. */
  pollIntervalMs?: number;
}

const MAX_READ = 32 * 1024;
const NEWLINE = 0x0a;

export class DetachedJobs {
  readonly #options: DetachedJobsOptions;
  readonly #pollIntervalMs: number;

  constructor(options: DetachedJobsOptions) {
    this.#options = options;
    this.#pollIntervalMs = options.pollIntervalMs ?? 200;
  }

  /** Starts `argv` detached and records how to find it again. */
  async start(
    meta: Omit<JobMeta, "handle" | "startedAt">,
    argv: readonly string[],
    cwd: string,
  ): Promise<{ ok: true; meta: JobMeta } | { ok: false; error: string }> {
    const { store, runner, mode } = this.#options;
    const id = meta.commandId;
    await store.prepareJob(id);
    const files = store.jobFiles(id);
    const started = await runner.startDetachedJob({
      name: `nixfleet-job-${id}`,
      argv,
      cwd,
      logFile: files.log,
      exitFile: files.exit,
      mode,
    });
    if (!started.ok) return started;
    const full: JobMeta = { ...meta, handle: started.handle, startedAt: new Date().toISOString() };
    await store.writeJobMeta(full);
    return { ok: true, meta: full };
  }

  /** Tails the job's output until it ends, a `stop` cancels it, or the agent stops. */
  async follow(meta: JobMeta, signals: { cancel: AbortSignal; shutdown: AbortSignal }): Promise<JobEnd> {
    const { store, runner, events, logger } = this.#options;
    const id = meta.commandId;
    const files = store.jobFiles(id);
    const progress = await store.readJobProgress(id);
    events.setNextSeq(id, progress.seq);
    let offset = progress.offset;
    const decoder = new TextDecoder();
    const wake = AbortSignal.any([signals.cancel, signals.shutdown]);

    const pump = async (final: boolean) => {
      for (;;) {
        const read = await readFrom(files.log, offset, MAX_READ);
        if (read.length === 0) return;
        // Send whole lines, so a later agent process resumes at a line boundary.
        let end = read.length;
        if (!final && read.length < MAX_READ) {
          end = read.lastIndexOf(NEWLINE) + 1;
          if (end === 0) return;
        }
        offset += end;
        const upTo = offset;
        events.output(id, "stdout", decoder.decode(read.subarray(0, end), { stream: !final }));
        events.mark(id, (seq) => store.writeJobProgress(id, { offset: upTo, seq }));
        if (end < MAX_READ) return;
      }
    };

    let lastAliveCheck = Date.now();
    let livenessFailures = 0;
    // The exit file's arrival cuts the wait, so the result goes out when the job ends rather than up to an interval later.
    let exitWritten = new AbortController();
    const watcher = watchForExit(path.dirname(files.exit), path.basename(files.exit), () => exitWritten.abort());
    try {
      for (;;) {
        await pump(false);
        const exitCode = await store.readJobExit(id);
        if (exitCode !== null) {
          await pump(true);
          return { kind: "exited", exitCode };
        }
        if (signals.shutdown.aborted) return { kind: "left-running" };
        if (signals.cancel.aborted) {
          const killed = await runner.stopJob(meta.handle);
          await store.markJobCancelled(id);
          await pump(true);
          logger.info("stopped a detached job", { command: id, killed });
          return { kind: "cancelled", killed };
        }
        if (Date.now() - lastAliveCheck >= 1_000) {
          lastAliveCheck = Date.now();
          const alive = await runner.isJobAlive(meta.handle).catch(() => true);
          if (!alive) {
            // The exit file is written just before the job ends: look once more.
            const late = await store.readJobExit(id);
            await pump(true);
            if (late !== null) return { kind: "exited", exitCode: late };
            if (await store.isJobCancelled(id)) return { kind: "cancelled", killed: true };
            livenessFailures++;
            if (livenessFailures >= 2) return { kind: "vanished" };
          }
        }
        await sleep(this.#pollIntervalMs, AbortSignal.any([wake, exitWritten.signal]));
        if (exitWritten.signal.aborted) exitWritten = new AbortController();
      }
    } finally {
      watcher?.close();
    }
  }

  /** The job's last output lines, for the error of a failed switch. */
  async lastLines(id: string, lines: number): Promise<string> {
    const { store } = this.#options;
    const file = store.jobFiles(id).log;
    const size = await fs.stat(file).then((s) => s.size).catch(() => 0);
    const start = Math.max(0, size - 16 * 1024);
    const text = new TextDecoder().decode(await readFrom(file, start, size - start));
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  }
}

/** Calls `onExit` when `name` appears in `dir`; null where the directory cannot be watched (polling still finds it). */
function watchForExit(dir: string, name: string, onExit: () => void): FSWatcher | null {
  try {
    const watcher = watch(dir, { persistent: false }, (_event, file) => {
      if (file === name) onExit();
    });
    watcher.on("error", () => watcher.close());
    return watcher;
  } catch {
    return null;
  }
}

async function readFrom(file: string, offset: number, length: number): Promise<Uint8Array> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, "r");
    const buffer = new Uint8Array(length);
    const { bytesRead } = await handle.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
  } catch {
    return new Uint8Array(0);
  } finally {
    await handle?.close();
  }
}

