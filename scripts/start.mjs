// `npm start`: the whole control plane locally on workerd — no Cloudflare account, no network.
// Builds the dashboard, applies the D1 migrations to the local database, then runs `wrangler dev`.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { existsSync, readFileSync } from "node:fs";
import { buildUi } from "./build-ui.mjs";
import { DEVELOPMENT_SETTINGS_ENCRYPTION_KEY } from "./dev-settings-key.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const port = process.env.PORT ?? "8787";
const persist = process.env.NIXFLEET_STATE_DIR ?? `${root}.wrangler/state`;
// Wrangler must not phone home: CI and many hosts have no route to Cloudflare.
const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: process.env.CI ?? "" };

const run = (args) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${root}node_modules/wrangler/bin/wrangler.js`, ...args], { cwd: root, env, stdio: "inherit" });
    const forward = (signal) => child.kill(signal);
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    child.on("exit", (code, signal) => {
      process.off("SIGINT", forward);
      process.off("SIGTERM", forward);
      code === 0 || signal ? resolve(code ?? 0) : reject(new Error(`wrangler ${args[0]} exited with ${code}`));
    });
  });

// The settings' secrets are sealed with SETTINGS_ENCRYPTION_KEY: your own from .dev.vars, else the published
// development key (local only, see dev-settings-key.mjs).
const devVars = existsSync(`${root}.dev.vars`) ? readFileSync(`${root}.dev.vars`, "utf8") : "";
const settingsKey = /^\s*SETTINGS_ENCRYPTION_KEY\s*=/m.test(devVars) ? [] : ["--var", `SETTINGS_ENCRYPTION_KEY:${DEVELOPMENT_SETTINGS_ENCRYPTION_KEY}`];

await buildUi();
await run(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist]);
console.log(`\nNixFleet control plane: http://localhost:${port} (development mode — no authentication)\n`);
const code = await run(["dev", "--port", port, "--ip", "127.0.0.1", "--persist-to", persist, "--show-interactive-dev-session=false", "--log-level", "info", ...settingsKey]);
process.exit(code);
