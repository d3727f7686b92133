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
}

export type WorkerEnv = Env & Secrets;

export interface AppEnv {
  Bindings: WorkerEnv;
  Variables: {
    db: Database;
    /** Who acts: the Access identity's email, or the development identity. */
    actor: string;
  };
}
