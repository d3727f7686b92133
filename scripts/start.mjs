// `npm start`: the whole control plane locally on workerd — no Cloudflare account, no network.
// Builds the dashboard, applies the D1 migrations to the local database, then runs `wrangler dev` on an internal
// loopback port behind the local front (scripts/local-dev-front.mjs), which alone listens on PORT.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { existsSync, readFileSync } from "node:fs";
import { buildUi } from "./build-ui.mjs";
import { DEVELOPMENT_SETTINGS_ENCRYPTION_KEY } from "./dev-settings-key.mjs";
import { startLocalDevFront } from "./local-dev-front.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const port = Number(process.env.PORT ?? "8787");
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(1);
}
const persist = process.env.NIXFLEET_STATE_DIR ?? `${root}.wrangler/state`;
// Where the dashboard is built and served from: dist/ui unless set (a test's run must not rebuild the dist/ui
// that other tests copy meanwhile).
const uiDir = process.env.NIXFLEET_UI_DIR;
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

// The Worker's local vars come from .dev.vars, or from NIXFLEET_ENV_FILE when it is set (wrangler's --env-file:
// then .dev.vars and .env are not read; the tests hand it an empty file so a developer's .dev.vars stays out).
const envFile = process.env.NIXFLEET_ENV_FILE;
const envFileArgs = envFile ? ["--env-file", envFile] : [];
// The settings' secrets are sealed with SETTINGS_ENCRYPTION_KEY: your own from those vars, else the published
// development key (local only, see dev-settings-key.mjs).
const varsFile = envFile ?? `${root}.dev.vars`;
const devVars = existsSync(varsFile) ? readFileSync(varsFile, "utf8") : "";
const settingsKey = /^\s*SETTINGS_ENCRYPTION_KEY\s*=/m.test(devVars) ? [] : ["--var", `SETTINGS_ENCRYPTION_KEY:${DEVELOPMENT_SETTINGS_ENCRYPTION_KEY}`];

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port: free } = server.address();
      server.close(() => resolve(free));
    });
  });

await buildUi(uiDir ? { outdir: uiDir } : {});
await run(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist, ...envFileArgs]);
const devPort = await freePort();
// New every run, so no page or process has learnt it before; wrangler hands it to the Worker as a var.
const frontSecret = randomBytes(32).toString("base64url");
await startLocalDevFront({ port, targetPort: devPort, secret: frontSecret, log: (line) => console.log(`local front: ${line}`) });
console.log(`\nNixFleet control plane: http://localhost:${port} (development mode — no authentication)`);
console.log(`wrangler dev answers behind it on 127.0.0.1:${devPort}, only for requests that come through http://localhost:${port}\n`);
const code = await run([
  "dev", "--port", String(devPort), "--ip", "127.0.0.1", "--persist-to", persist, "--show-interactive-dev-session=false", "--log-level", "info",
  "--var", `LOCAL_FRONT_SECRET:${frontSecret}`, ...settingsKey, ...envFileArgs, ...(uiDir ? ["--assets", uiDir] : []),
]);
process.exit(code);
