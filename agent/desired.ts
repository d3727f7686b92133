/**
 * The desired system: what the host's configuration builds at main's head.
 * Main's head comes from the poll answer (`main`) and from the agent's own
 * pulls; each new head is resolved to its git tree and flake.lock hash, and
 * evaluated only when that (tree, lock, attribute) has not been evaluated on
 * this host before (the cache is in systems.json, so it outlives a restart).
 * An evaluation starts after a random delay, so a fleet does not evaluate in
 * the same second, and its end is reported at once (`onChange`).
 *
 * Once the desired system is in the host's store (a fleet build, any build, a
 * dry run with nothing to do), it is compared with the running system as a
 * fleet build is (closure-compare.ts), once per pair of systems: the diff is
 * kept with the evaluation.
 *
 * With `evaluate: "ci"` the agent evaluates nothing: the control plane uses
 * what CI publishes (`POST /api/desired`).
 */
import type { AgentConfig } from "../common/agent-config.ts";
import { StorePath, type BuildResult, type DesiredClosureDiff, type DesiredReport, type DesiredSystem } from "../common/protocol.ts";
import { sleep } from "./backoff.ts";
import { compareClosures } from "./closure-compare.ts";
import { evaluateCommit, resolveCommit, type EvaluationHost } from "./desired-evaluation.ts";
import type { JobStore } from "./job-store.ts";
import type { Logger } from "./logger.ts";
import { readCurrentSystem } from "./system.ts";

type BuiltSystem = Extract<DesiredSystem, { outPath: string }>;

export interface DesiredSystemsOptions {
  host: EvaluationHost;
  config: AgentConfig;
  store: Pick<JobStore, "cachedEvaluation" | "recordEvaluation" | "recordRealised" | "desiredLatest" | "recordDesiredLatest">;
  logger: Logger;
  random: () => number;
  now: () => number;
  /** The report changed: send it now. */
  onChange(): void;
  shutdown: AbortSignal;
}

export class DesiredSystems {
  readonly #options: DesiredSystemsOptions;
  #latest: DesiredSystem | null;
  #evaluating: string | null = null;
  /** The newest head of main heard of; the loop works until it has handled it. */
  #wanted: string | null = null;
  #handled: string | null = null;
  #loop: Promise<void> | null = null;
  /** A command built or activated a system: the desired one may be in the store now, or the running one moved. */
  #recheck = false;
  /** The last build command's closure diff, taken as it is when it compared the desired system with the running one. */
  #lastBuild: Pick<BuildResult, "storePath" | "comparedWith" | "closureDiff"> | null = null;

  constructor(options: DesiredSystemsOptions) {
    this.#options = options;
    this.#latest = options.config.desired.evaluate === "local" ? options.store.desiredLatest() : null;
    this.#handled = this.#latest?.commit ?? null;
  }

  report(): DesiredReport {
    const source = this.#options.config.desired.evaluate;
    return { source, latest: source === "local" ? this.#latest : null, evaluating: this.#evaluating };
  }

  /** Main's head is `commit` (from the poll answer or a pull): evaluate it unless that is known. */
  mainAt(commit: string): void {
    if (this.#options.config.desired.evaluate !== "local" || commit === this.#wanted) return;
    this.#wanted = commit;
    this.#kick();
  }

  /**
   * A switch evaluated the clean clone at `commit` and cached it (commands/switch.ts). When that is main's
   * head (`main`: the switch's pull just brought the clone there, as `mainAt` after the command says too),
   * it is the desired system now, stored before the switch activates: the report after the switch (the
   * safety net's confirmation, sent by the restarted agent) says the host runs main's system, where this
   * host's own evaluation of main, after its random delay, would hold a rollout's gate until it ends.
   */
  async evaluated(commit: string, system: DesiredSystem, main: boolean): Promise<void> {
    if (this.#options.config.desired.evaluate !== "local") return;
    if (main) this.#wanted = commit;
    if (commit !== this.#wanted || commit === this.#handled) return;
    this.#latest = system;
    this.#handled = commit;
    if (this.#evaluating === commit) this.#evaluating = null;
    await this.#options.store.recordDesiredLatest(system);
    this.#options.onChange();
  }

  /**
   * A switch activated `outPath`. When that is the latest desired system, it is in the store and runs: nothing is
   * left to build or fetch, known at once (in memory before the first await), so the report that goes with the
   * switch's end says so, and the re-check after the end (systemsChanged) finds nothing new to report.
   */
  async activated(outPath: string): Promise<void> {
    const latest = this.#latest;
    if (latest === null || !("outPath" in latest) || latest.outPath !== outPath) return;
    if (latest.changes !== null && latest.changes.toBuild === 0 && latest.changes.toFetch === 0) return;
    const realised: BuiltSystem = { ...latest, changes: { toBuild: 0, toFetch: 0, downloadBytes: 0 } };
    this.#latest = realised;
    await this.#options.store.recordRealised(realised);
  }

  /**
   * The store or the running system changed (the agent started, a build or switch ended): the latest
   * desired system may be realised now, or its closure diff made against a system that no longer runs.
   */
  systemsChanged(build?: BuildResult): void {
    if (this.#options.config.desired.evaluate !== "local") return;
    if (build?.storePath != null && build.closureDiff !== null) this.#lastBuild = build;
    this.#recheck = true;
    this.#kick();
  }

  #kick(): void {
    if (this.#loop !== null) return;
    this.#loop = this.#work().finally(() => {
      this.#loop = null;
    });
  }

  /** Resolves once no evaluation runs (the agent's shutdown stops one). */
  async settled(): Promise<void> {
    await this.#loop;
  }

  async #work(): Promise<void> {
    const { shutdown } = this.#options;
    while (!shutdown.aborted) {
      if (this.#wanted !== null && this.#wanted !== this.#handled) {
        await this.#evaluate(this.#wanted);
      } else if (this.#recheck) {
        this.#recheck = false;
        await this.#recheckLatest();
      } else {
        return;
      }
    }
  }

  async #evaluate(commit: string): Promise<void> {
    try {
      const system = await this.#desiredAt(commit);
      // Null when stopped; and a switch may have made a newer head known meanwhile (evaluated()).
      if (system === null || (this.#wanted !== commit && this.#wanted === this.#handled)) return;
      this.#latest = system;
      await this.#options.store.recordDesiredLatest(system);
      this.#handled = commit;
    } catch (error) {
      this.#options.logger.error("the desired-system evaluation failed unexpectedly", { commit, problem: String(error) });
      this.#handled = commit;
    } finally {
      this.#evaluating = null;
    }
    this.#options.onChange();
  }

  async #recheckLatest(): Promise<void> {
    const latest = this.#latest;
    if (latest === null || !("outPath" in latest)) return;
    try {
      const realised = await this.#realised(latest);
      if (realised === latest) return;
      this.#latest = realised;
      this.#options.onChange();
    } catch (error) {
      this.#options.logger.error("checking the desired system in the store failed unexpectedly", { problem: String(error) });
    }
  }

  /** The desired system at `commit`, from the cache or a new evaluation; null when stopped. */
  async #desiredAt(commit: string): Promise<DesiredSystem | null> {
    const { host, config, store, logger, shutdown } = this.#options;
    const resolved = await resolveCommit(host, commit, shutdown);
    if (shutdown.aborted) return null;
    if (!resolved.ok) {
      // Not main's fault (the origin is out of reach, say): the last answer stands, and the next
      // poll answer naming this head tries again.
      logger.warn("cannot fetch main's head to evaluate it", { commit, problem: resolved.error });
      if (this.#wanted === commit) this.#wanted = null;
      return null;
    }
    const { key } = resolved;
    const cached = store.cachedEvaluation(key);
    if (cached !== null) {
      logger.debug("desired system already evaluated at this tree", { commit, tree: key.tree });
      return { ...(await this.#realised(cached)), commit };
    }

    this.#evaluating = commit;
    this.#options.onChange();
    const delayMs = Math.floor(this.#options.random() * config.desired.maxDelaySeconds * 1000);
    logger.info("evaluating the desired system at main's head", { commit, tree: key.tree, delayMs });
    await sleep(delayMs, shutdown);
    // A newer head arrived while this one waited: evaluate that one instead. Or a switch evaluated this one meanwhile.
    if (shutdown.aborted || this.#wanted !== commit || this.#handled === commit) return null;

    const started = performance.now();
    const outcome = await evaluateCommit(host, commit, config.desired, shutdown);
    const evaluatedAt = this.#isoNow();
    if (outcome.kind === "stopped") return null;
    const base = { commit, tree: key.tree, evaluatedAt };
    const durationMs = Math.round(performance.now() - started);
    if (outcome.kind === "failed") {
      logger.warn("main does not evaluate on this host", { commit, error: outcome.error, durationMs });
      const system: DesiredSystem = { ...base, error: outcome.error.slice(0, 2000) };
      if (outcome.cacheable) await store.recordEvaluation(key, system);
      return system;
    }
    logger.info("desired system evaluated", { commit, outPath: outcome.outPath, durationMs });
    const system: DesiredSystem = { ...base, outPath: outcome.outPath, changes: outcome.changes };
    await store.recordEvaluation(key, system);
    return this.#realised(system);
  }

  /**
   * Once the system is in the store, nothing is left to build or fetch (a switch's own evaluation,
   * commands/switch.ts, runs no dry run; a build may have realised it since), and the switch to it
   * changes what its closure diff against the running system says. Kept with every evaluation of
   * that store path; the same system when nothing new was learnt.
   */
  async #realised(system: DesiredSystem): Promise<DesiredSystem> {
    if (!("outPath" in system)) return system;
    const { host, store } = this.#options;
    const nothingToDo = system.changes !== null && system.changes.toBuild === 0 && system.changes.toFetch === 0;
    if (!nothingToDo && !(await host.runner.realPath(system.outPath).then(() => true, () => false))) return system;
    const running = (await readCurrentSystem(host.platform, host.runner)).value;
    const stale = running !== null && running !== system.outPath && system.closureDiff?.comparedWith !== running;
    const closureDiff = stale ? ((await this.#closureDiff(running, system.outPath)) ?? system.closureDiff) : system.closureDiff;
    if (nothingToDo && closureDiff === system.closureDiff) return system;
    const realised: BuiltSystem = { ...system, changes: { toBuild: 0, toFetch: 0, downloadBytes: 0 }, ...(closureDiff === undefined ? {} : { closureDiff }) };
    await store.recordRealised(realised);
    return realised;
  }

  /** The running system against the desired one: the build's diff when a build just made it, else nix's. */
  async #closureDiff(running: string, outPath: string): Promise<DesiredClosureDiff | null> {
    const { host, logger, shutdown } = this.#options;
    // The report carries it: a running system that is no store path (a test's profile, say) is not compared.
    if (!StorePath.safeParse(running).success) return null;
    const build = this.#lastBuild;
    if (build?.closureDiff != null && build.storePath === outPath && build.comparedWith === running) {
      return { ...build.closureDiff, comparedWith: running };
    }
    const compared = await compareClosures(host, running, outPath, shutdown);
    if (shutdown.aborted) return null;
    if (compared.value === null) {
      logger.warn("no closure diff of the desired system", { outPath, problem: compared.reason });
      return null;
    }
    logger.info("desired system compared with the running one", { outPath, packages: compared.value.entries.length + compared.value.omitted });
    return { ...compared.value, comparedWith: running };
  }

  #isoNow(): string {
    return new Date(this.#options.now()).toISOString();
  }
}
