/**
 * `nixfleet-agent run --config FILE` (the default) and
 * `nixfleet-agent status [--json] --config FILE`.
 *
 * Exit codes: 0 stopped cleanly, 64 bad usage, 75 restart requested by the
 * control plane (the service manager starts the agent again), 78 bad config
 * or missing token (restarting would not help).
 */
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as z from "zod";
import { AgentConfig } from "../common/agent-config.ts";
import type { Report } from "../common/protocol.ts";
import { NIXFLEET_VERSION } from "../common/version.ts";
import { Agent } from "./agent.ts";
import { AgentStartError } from "./startup.ts";
import { ConnectionLog, describeConnection, type ConnectionState } from "./connection-state.ts";
import { JobStore } from "./job-store.ts";
import { createLogger } from "./logger.ts";
import { platformFor } from "./platforms/index.ts";
import { ReportCollector } from "./report.ts";
import { createNodeRunner } from "./runner.ts";

export const EXIT_USAGE = 64;
export const EXIT_RESTART = 75;
export const EXIT_CONFIG = 78;

const USAGE = `Usage:
  nixfleet-agent [run] --config FILE      poll the control plane and run its commands
  nixfleet-agent watchdog DIR             (started by the agent) roll back an unconfirmed switch
  nixfleet-agent status [--json] --config FILE
                                          print the report the agent would send
  nixfleet-agent cache push …           upload store paths to the fleet's binary cache
                                          (nixfleet-agent cache --help)
  nixfleet-agent --version

The config file path may also come from NIXFLEET_AGENT_CONFIG.`;

class UsageError extends Error {}

/** Runs the CLI; resolves with the process exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv[0] === "cache") {
    const { cacheCommand } = await import("./cache-push.ts");
    return cacheCommand(argv.slice(1), env, { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text) });
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: "string", short: "c" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", default: false },
      },
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${NIXFLEET_VERSION}\n`);
    return 0;
  }
  const command = positionals[0] ?? "run";
  if (command === "watchdog") return watchdog(positionals.slice(1));
  try {
    if (positionals.length > 1) throw new UsageError(`unexpected argument ${positionals[1]}`);
    const configFile = values.config ?? env.NIXFLEET_AGENT_CONFIG;
    if (configFile === undefined || configFile === "") throw new UsageError("no config file: pass --config FILE or set NIXFLEET_AGENT_CONFIG");
    const config = await loadConfig(configFile);
    if (command === "run") return await run(config);
    if (command === "status") return await status(config, values.json);
    throw new UsageError(`unknown command ${command}`);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`nixfleet-agent: ${error.message}\n\n${USAGE}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof AgentStartError) {
      process.stderr.write(`nixfleet-agent: ${error.message}\n`);
      return EXIT_CONFIG;
    }
    throw error;
  }
}

/** Reads and validates the config file; the error says which field is wrong. */
export async function loadConfig(file: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    throw new AgentStartError(`cannot read config file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new AgentStartError(`config file ${file} is not JSON: ${(error as Error).message}`);
  }
  const parsed = AgentConfig.safeParse(json);
  if (!parsed.success) throw new AgentStartError(`config file ${file} is invalid:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** The safety net's watchdog for one armed switch (started by the agent, agent/safety-net/watchdog.ts). */
async function watchdog(args: string[]): Promise<number> {
  const [dir, ...rest] = args;
  if (dir === undefined || rest.length > 0) {
    process.stderr.write(`nixfleet-agent: watchdog takes exactly one argument, the safety net directory\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  const { runWatchdog } = await import("./safety-net/watchdog.ts");
  const result = await runWatchdog(dir);
  return result === "rollback-failed" || result === "no-record" ? 1 : 0;
}

/**
 * The safety net's watchdog runs this same package: the node binary, its flags, and the watchdog's own
 * bundle beside the agent's bundle this code runs from (a smaller process: docs/hosts.md), else the
 * entry the agent was started with (`<entry> watchdog DIR`). `runningFile` is this module's file: the
 * bundle when bundled, however it was started (bin/nixfleet-agent.js imports it).
 */
export function watchdogCommandOf(entry: string | undefined, runningFile: string): string[] {
  const own = runningFile.endsWith("/nixfleet-agent.mjs") ? runningFile.replace(/nixfleet-agent\.mjs$/, "nixfleet-watchdog.mjs") : null;
  return [process.execPath, ...process.execArgv, ...(own !== null && existsSync(own) ? [own] : entry !== undefined ? [entry] : [])];
}

async function run(config: AgentConfig): Promise<number> {
  const watchdogCommand = watchdogCommandOf(process.argv[1], fileURLToPath(import.meta.url));
  const agent = new Agent({ config, logger: createLogger({ level: config.logLevel }), watchdogCommand });
  await agent.start();
  // The agent's own timers are unref'd; this is what keeps the process up.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const code = await new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.stderr.write(`nixfleet-agent: ${signal} received, stopping (detached switch jobs keep running)\n`);
      resolve(0);
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
    void agent.restartRequested.then(() => resolve(EXIT_RESTART));
  });
  await agent.stop();
  clearInterval(keepAlive);
  return code;
}

async function status(config: AgentConfig, json: boolean): Promise<number> {
  const logger = createLogger({ level: "error" });
  const store = await JobStore.openReadOnly(config.stateDir, logger);
  const collector = new ReportCollector({
    config,
    platform: platformFor(config),
    runner: createNodeRunner({ extraPath: config.extraPath }),
    store,
    cloneDir: store.cloneDir,
    agentStartedAt: Date.now(),
  });
  const report = await collector.collect();
  const connection = await ConnectionLog.read(config.stateDir);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(report, connection));
  return 0;
}

function renderStatus(report: Report, connection: ConnectionState | null): string {
  const show = (value: { value: unknown; reason?: string }) =>
    value.value !== null ? String(value.value) : `unknown (${value.reason ?? "no reason given"})`;
  const lines: Array<[string, string]> = [
    ["host", `${report.hostname} (${report.platform})`],
    ["server", describeConnection(connection)],
    ["agent", report.agentVersion],
    ["os", show(report.os)],
    ["nixpkgs", show(report.nixpkgsVersion)],
    ["nix", show(report.nixVersion)],
    ["commit", show(report.repo.commit)],
    ["branch", show(report.repo.branch)],
    ["dirty", report.repo.dirty === null ? "unknown" : String(report.repo.dirty)],
    ["flake.lock", show(report.lock.hash)],
    ["system", show(report.system.current)],
    ["built from", report.system.builtFromCommit ?? "unknown"],
    [
      "tests",
      !report.tests.configured
        ? "none configured"
        : report.tests.last === null
          ? "not run yet"
          : `${report.tests.last.results.filter((r) => r.passed).length}/${report.tests.last.results.length} passed at ${report.tests.last.finishedAt}`,
    ],
  ];
  return `${lines.map(([key, value]) => `${key.padEnd(11)} ${value}`).join("\n")}\n`;
}

/** Entry point of bin/nixfleet-agent.js: runs `main` and exits with its code. */
export function runCli(): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`nixfleet-agent: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
