import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const migrations = await readD1Migrations(fileURLToPath(new URL("./migrations", import.meta.url)));

export default defineConfig({
  test: {
    // The Worker serves dist/ui, and the agent ships as dist/agent: build both once, before any project starts.
    globalSetup: ["./test/support/build-ui.ts", "./test/support/build-agent.ts"],
    projects: [
      {
        // Inside workerd, against real local D1 (with the real migrations) and real Durable Objects.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                TEST_MIGRATIONS: migrations,
                GITHUB_WEBHOOK_SECRET: "test-webhook-secret",
                GITHUB_REPOSITORY: "example/fleet",
                POLL_TIMEOUT_SECONDS: "2",
                // GET /metrics answers only with this bearer token (test/worker/metrics.test.ts).
                METRICS_TOKEN: "test-metrics-token",
                // More generated requests for the bad-input property test (test/worker/bad-input.test.ts).
                NIXFLEET_PROPERTY_RUNS: process.env.NIXFLEET_PROPERTY_RUNS ?? "",
              },
            },
          }),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          setupFiles: ["./test/worker/apply-migrations.ts"],
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
          fileParallelism: false,
        },
      },
    ],
  },
});
