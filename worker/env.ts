import type { Role } from "../common/protocol.ts";
import type { Database } from "./db/client.ts";

/** Secrets (`wrangler secret put`, `.dev.vars` locally): never in wrangler.toml, never in D1. */
export interface Secrets {
  GITHUB_REPOSITORY?: string;
  GITHUB_WEBHOOK_SECRET?: string;
  GITHUB_TOKEN?: string;
  GITHUB_APP_ID?: string;
  GITHUB_APP_PRIVATE_KEY?: string;
  GITHUB_APP_INSTALLATION_ID?: string;
  GITHUB_API_URL?: string;
  ACCESS_AUD?: string;
  ACCESS_TEAM_DOMAIN?: string;
  /** Tests and unusual set-ups only: where to read the Access signing keys. */
  ACCESS_JWKS_URL?: string;
  /** Tests and unusual set-ups only: where to read an identity's Access groups. */
  ACCESS_IDENTITY_URL?: string;
  /** Roles (worker/roles.ts): exact addresses or `*@domain`, comma-separated; everyone else is a viewer. */
  ADMIN_EMAILS?: string;
  OPERATOR_EMAILS?: string;
  /** Access group names, read from Access's identity endpoint only when one of these is set. */
  ADMIN_GROUPS?: string;
  OPERATOR_GROUPS?: string;
  /** The bearer token a Prometheus scrape of GET /metrics presents; without it /metrics answers 503. */
  METRICS_TOKEN?: string;
  /**
   * AES-GCM key (base64 of 32 random bytes) that seals the notification channels' secrets in the stored
   * settings (worker/settings-secrets.ts). Without it a settings change carrying a secret is refused.
   */
  SETTINGS_ENCRYPTION_KEY?: string;
  /** Notification channels as a JSON list, for operators who configure by vars (worker/settings.ts). */
  NOTIFICATION_CHANNELS?: string;
  /**
   * Development only: the per-run secret the local front of `npm start` and the demo adds to every request
   * it passes on (scripts/local-dev-front.mjs); when set, the development identity needs it.
   */
  LOCAL_FRONT_SECRET?: string;
  /** Benchmarks only: "true" adds Server-Timing marks to answers, unless Access is configured (worker/server-timing.ts). */
  SERVER_TIMING?: string;
}

export type WorkerEnv = Env & Secrets;

export interface AppEnv {
  Bindings: WorkerEnv;
  Variables: {
    db: Database;
    /** Who acts: the Access identity's email, or the development identity. */
    actor: string;
    /** What the actor may do: from ADMIN_EMAILS / OPERATOR_EMAILS (worker/roles.ts); the development identity is an admin. */
    role: Role;
  };
}
