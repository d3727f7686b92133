/**
 * The one protocol module: every message that crosses a boundary between the
 * worker, the agent and the dashboard is a zod schema, parsed on arrival.
 * Types are inferred from the schemas, never written twice.
 *
 * The schemas live under protocol/, one file per audience; this index
 * re-exports them all. The agent's wire contract is protocol/agent.ts, which
 * imports only version, hosts, commands, closure-diff and reports.
 */
export * from "./protocol/version.ts";
export * from "./protocol/hosts.ts";
export * from "./protocol/commands.ts";
export * from "./protocol/closure-diff.ts";
export * from "./protocol/reports.ts";
export * from "./protocol/desired.ts";
export * from "./protocol/cache.ts";
export * from "./protocol/agent.ts";
export * from "./protocol/roles.ts";
export * from "./protocol/errors.ts";
export * from "./protocol/deployment.ts";
export * from "./protocol/lock-changes.ts";
export * from "./protocol/repository.ts";
export * from "./protocol/compartments.ts";
export * from "./protocol/dashboard-events.ts";
export * from "./protocol/rollouts.ts";
export * from "./protocol/settings.ts";
export * from "./protocol/notifications.ts";
export * from "./protocol/fleet-build.ts";
export * from "./protocol/automation.ts";
export * from "./protocol/cache-manifest.ts";
