/**
 * wrangler.toml as a JSON copy in a directory of its own, beside an empty `.dev.vars`, for the workerd test
 * projects (vitest.config.ts): their Worker must get the config's vars and the test's bindings, never the
 * developer's local settings.
 *
 * @cloudflare/vitest-plugin hands the config to wrangler (unstable_getMiniflareWorkerOptions), which adds
 * to the config's vars the first of these it finds beside the config file (getVarsForDev, wrangler 4.164):
 * `.dev.vars`; else `.env` and `.env.local` (unless CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV=false), plus
 * the whole process environment with CLOUDFLARE_INCLUDE_PROCESS_ENV=true. docs/github.md has developers
 * write a `.dev.vars` naming a GitHub repository and token, and with it GitHub counted as configured in
 * every test. Neither the plugin nor wrangler's API offers to skip these files (the plugin passes wrangler
 * no env files), so the copy's directory has an empty `.dev.vars`: found first, it ends the search.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { experimental_readRawConfig } from "wrangler";
import { z } from "zod";

/**
 * Keys of a wrangler config that hold paths relative to the config file and that this copy does not
 * rewrite: wrangler.toml gaining one must not make the copy point into the temporary directory.
 */
const UNREWRITTEN_PATH_KEYS = ["site", "build", "tsconfig", "base_dir", "alias", "rules", "wasm_modules", "text_blobs", "data_blobs", "containers", "env"];

/** The keys this copy rewrites; wrangler's own types for the raw config are not published with it. */
const RawConfigPaths = z.looseObject({
  main: z.string().optional(),
  assets: z.looseObject({ directory: z.string().optional() }).optional(),
  d1_databases: z.array(z.looseObject({ migrations_dir: z.string().optional() })).optional(),
});

/**
 * Writes the copy of `configPath` (a wrangler.toml) into a new temporary directory and returns the
 * copy's path. The directory is removed when the process exits.
 */
export function isolatedWranglerConfig(configPath: string): string {
  const rawConfig = RawConfigPaths.parse(experimental_readRawConfig({ config: configPath }).rawConfig);
  const unrewritten = UNREWRITTEN_PATH_KEYS.filter((key) => key in rawConfig);
  if (unrewritten.length > 0) throw new Error(`${configPath}: ${unrewritten.join(", ")} may hold paths relative to the config; make them absolute in test/support/isolated-wrangler-config.ts`);

  const base = dirname(resolve(configPath));
  const copy = {
    ...rawConfig,
    main: rawConfig.main === undefined ? undefined : resolve(base, rawConfig.main),
    assets: rawConfig.assets?.directory === undefined ? rawConfig.assets : { ...rawConfig.assets, directory: resolve(base, rawConfig.assets.directory) },
    d1_databases: rawConfig.d1_databases?.map((database) => ({
      ...database,
      // wrangler's default, "migrations", is relative to the config too.
      migrations_dir: resolve(base, database.migrations_dir ?? "migrations"),
    })),
  };

  const dir = mkdtempSync(join(tmpdir(), "nixfleet-wrangler-config-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, ".dev.vars"), "");
  const copyPath = join(dir, "wrangler.json");
  writeFileSync(copyPath, `${JSON.stringify(copy, null, 2)}\n`);
  return copyPath;
}
