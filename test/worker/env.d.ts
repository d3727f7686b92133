// Bindings only the tests have (vitest.config.ts adds them).
declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    NIXFLEET_PROPERTY_RUNS?: string;
    GITHUB_WEBHOOK_SECRET?: string;
  }
}
