/**
 * The desired system: what the host's configuration builds at main's head.
 * Main's head comes from the poll answer (`main`) and from the agent's own
 * pulls; each new head is resolved to its git tree and flake.lock hash, and
 * evaluated only when that (tree, lock, attribute) has not been evaluated on
 * this host before (the cache is in systems.json, so it outlives a restart).
 * An evaluation starts after a random delay, so a fleet does not evaluate in
 * the same second, and its end is reported at once (`onChange`).
 *
 * With `evaluate: "ci"` the agent evaluates nothing: the control plane uses
 * what CI publishes (`POST /api/desired`).
 */
import type { AgentConfig } from "../common/agent-config.ts";
import type { DesiredReport, DesiredSystem } from "../common/protocol.ts";
import { sleep } from "./backoff.ts";
import { evaluateCommit, resolveCommit, type EvaluationHost } from "./desired-evaluation.ts";
import type { JobStore } from "./job-store.ts";
import type { Logger } from "./logger.ts";

export interface DesiredSystemsOptions {
  host: EvaluationHost;
  config: AgentConfig;
  store: Pick<JobStore, "cachedEvaluation" | "recordEvaluation" | "desiredLatest" | "recordDesiredLatest">;
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
    if (this.#loop === null) {
      this.#loop = this.#work().finally(() => {
        this.#loop = null;
      });
    }
  }

  /** Resolves once no evaluation runs (the agent's shutdown stops one). */
  async settled(): Promise<void> {
    await this.#loop;
  }

  async #work(): Promise<void> {
    const { shutdown } = this.#options;
    while (this.#wanted !== null && this.#wanted !== this.#handled && !shutdown.aborted) {
      const commit = this.#wanted;
      try {
        const system = await this.#desiredAt(commit);
        if (system === null) continue;
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
      return { ...(await this.#withChanges(cached)), commit };
    }

    this.#evaluating = commit;
    this.#options.onChange();
    const delayMs = Math.floor(this.#options.random() * config.desired.maxDelaySeconds * 1000);
    logger.info("evaluating the desired system at main's head", { commit, tree: key.tree, delayMs });
    await sleep(delayMs, shutdown);
    // A newer head arrived while this one waited: evaluate that one instead.
    if (shutdown.aborted || this.#wanted !== commit) return null;

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
    return system;
  }

  /**
   * A switch's own evaluation (commands/switch.ts) runs no dry run: once its build realised the path,
   * nothing is left to build or fetch; until then what it takes is not known.
   */
  async #withChanges(system: DesiredSystem): Promise<DesiredSystem> {
    if (!("outPath" in system) || system.changes !== null) return system;
    const realised = await this.#options.host.runner.realPath(system.outPath).then(() => true, () => false);
    return realised ? { ...system, changes: { toBuild: 0, toFetch: 0 } } : system;
  }

  #isoNow(): string {
    return new Date(this.#options.now()).toISOString();
  }
}
