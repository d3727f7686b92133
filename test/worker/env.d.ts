// Bindings only the tests have (vitest.config.ts adds them).
declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    NIXFLEET_PROPERTY_RUNS?: string;
    GITHUB_WEBHOOK_SECRET?: string;
    NOTIFICATION_CHANNELS?: string;
    /** The automation project's GitHub: the local emulator (vitest.config.ts). */
    GITHUB_API_URL?: string;
    GITHUB_TOKEN?: string;
  }
}
