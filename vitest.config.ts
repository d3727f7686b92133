import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { DEVELOPMENT_SETTINGS_ENCRYPTION_KEY } from "./scripts/dev-settings-key.mjs";
import { TEST_CACHE_KEYS } from "./test/fixtures/cache-keys.ts";
import { isolatedWranglerConfig } from "./test/support/isolated-wrangler-config.ts";

const migrations = await readD1Migrations(fileURLToPath(new URL("./migrations", import.meta.url)));

/**
 * Notification channels of the worker project (NOTIFICATION_CHANNELS). test/worker/notifier.test.ts
 * catches their requests at fetch. They want only the cron's events, which no other test file
 * publishes, so a rollout elsewhere stores no delivery and tries no connection.
 */
const testNotificationChannels = [
  { kind: "webhook", id: "ch_hook_hosts", url: "http://127.0.0.1:9/hook/in", secret: "test-notification-signing-secret", events: ["host-offline", "agent-outdated"] },
  { kind: "slack", id: "ch_slack_offline", url: "http://127.0.0.1:9/slack/T000/B000/slack-url-token", events: ["host-offline"] },
  { kind: "discord", id: "ch_discord_offline", url: "http://127.0.0.1:9/discord/api/webhooks/1/discord-url-token", events: ["host-offline"] },
  { kind: "ntfy", id: "ch_ntfy_agents", url: "http://127.0.0.1:9/ntfy/fleet", token: "tk_test-ntfy-token", events: ["agent-outdated"] },
];

/** A free loopback port, chosen now so that the workerd bindings can name it before the emulator starts. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no free port");
  return address.port;
}

// The GitHub emulator the `automation` project's objects talk to (test/support/github-emulator-setup.ts starts it).
// The config may be evaluated more than once (and in child processes): the first choice holds.
const githubEmulatorPort = Number(process.env.NIXFLEET_TEST_GITHUB_EMULATOR_PORT) || (await freePort());
process.env.NIXFLEET_TEST_GITHUB_EMULATOR_PORT = String(githubEmulatorPort);

// The workerd projects read wrangler.toml through a copy beside an empty .dev.vars: the developer's
// .dev.vars, .env or environment must not reach their Worker (test/support/isolated-wrangler-config.ts).
const wranglerConfigPath = isolatedWranglerConfig(fileURLToPath(new URL("./wrangler.toml", import.meta.url)));

const workerBindings = {
  TEST_MIGRATIONS: migrations,
  GITHUB_WEBHOOK_SECRET: "test-webhook-secret",
  GITHUB_REPOSITORY: "example/fleet",
  POLL_TIMEOUT_SECONDS: "2",
  // GET /metrics answers only with this bearer token (test/worker/metrics.test.ts).
  METRICS_TOKEN: "test-metrics-token",
  // Seals the settings' secrets (test/worker/settings.test.ts); the published development key, local only.
  SETTINGS_ENCRYPTION_KEY: DEVELOPMENT_SETTINGS_ENCRYPTION_KEY,
  // More generated requests for the bad-input property test (test/worker/bad-input.test.ts).
  NIXFLEET_PROPERTY_RUNS: process.env.NIXFLEET_PROPERTY_RUNS ?? "",
  // Narinfo uploads must be signed by this key (test/worker/cache-uploads.test.ts).
  CACHE_TRUSTED_KEYS: TEST_CACHE_KEYS.trusted.public,
};

export default defineConfig({
  test: {
    // The Worker serves dist/ui, and the agent ships as dist/agent: build both once, before any project starts.
    globalSetup: ["./test/support/build-ui.ts", "./test/support/build-agent.ts"],
    // Vitest's default on 2 cores is one file at a time, yet the end-to-end and browser files spend most
    // of their time waiting on agents, alarms and soaks, and each runs its own wrangler dev, agents and
    // Chromium on free ports: three at once keep both cores busy.
    maxWorkers: 3,
    projects: [
      {
        // Inside workerd, against real local D1 (with the real migrations) and real Durable Objects.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: wranglerConfigPath },
            miniflare: { bindings: { ...workerBindings, NOTIFICATION_CHANNELS: JSON.stringify(testNotificationChannels) } },
          }),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          // Need GitHub configured: the automation project runs them.
          exclude: ["test/worker/automation.test.ts", "test/worker/fleet-build.test.ts", "test/worker/github-rate-limit.test.ts", "test/worker/coordinator-outbox.test.ts"],
          setupFiles: ["./test/worker/apply-migrations.ts"],
          // vitest's 5 s default is a wall-clock limit that a loaded 2-core machine reaches with requests still
          // flowing (12 concurrent settings PUTs took over 5 s at a load average of 23); tests wait on conditions.
          testTimeout: 30_000,
        },
      },
      {
        // Inside workerd like `worker`, with GitHub configured: the local GitHub emulator (a Node server
        // this project's global setup starts), for objects that call GitHub themselves (the automation,
        // the coordinator's fleet build status) and the client's wiring (its rate-limit reading).
        plugins: [
          cloudflareTest({
            wrangler: { configPath: wranglerConfigPath },
            miniflare: {
              bindings: {
                ...workerBindings,
                GITHUB_API_URL: `http://127.0.0.1:${githubEmulatorPort}`,
                GITHUB_TOKEN: "ghp_worker_github_test",
                AUTOMATION_ENABLED: "true",
                // 3 seconds: long enough to act between scheduling and the alarm, short enough to wait for.
                AUTOMATION_MERGE_DELAY_MINUTES: "0.05",
                // The link of the fleet build's commit status (test/worker/fleet-build.test.ts).
                DASHBOARD_URL: "https://fleet.example.com/",
              },
            },
          }),
        ],
        test: {
          // Vitest starts projects in the order of their names: this one's automation file waits on real
          // alarms for over a minute, so it starts first instead of last, beside the browser files.
          name: "automation",
          include: ["test/worker/automation.test.ts", "test/worker/fleet-build.test.ts", "test/worker/github-rate-limit.test.ts", "test/worker/coordinator-outbox.test.ts"],
          setupFiles: ["./test/worker/apply-migrations.ts"],
          globalSetup: ["./test/support/github-emulator-setup.ts"],
          testTimeout: 60_000,
        },
      },
      {
        // Plain Node: pure modules, the agent with real git and nix, the emulator, end-to-end.
        test: {
          name: "node",
          include: ["test/**/*.test.ts"],
          exclude: ["test/worker/**", "test/browser/**", "**/node_modules/**"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // expect.poll is how these tests wait for what the page shows late (lazy chunks, socket events);
          // its 1 s default is too short for Chromium and wrangler on a loaded machine.
          expect: { poll: { timeout: 15_000, interval: 100 } },
        },
      },
    ],
  },
});
