/**
 * `nixfleet setup`: creates a deployment with the person's own Cloudflare account, by driving `wrangler`
 * (found on PATH, as `npx` puts the project's own there) as a subprocess. It first asks wrangler what
 * exists, then plans only what is missing, so a second run plans nothing; `--dry-run` prints the plan.
 *
 * The deployment's wrangler configuration is its own file (`<dir>/wrangler.toml`, made from the
 * committed wrangler.toml with the database id, the Worker's name and `workers_dev = false`), never the
 * committed one. Secrets are put only when absent: a new SETTINGS_ENCRYPTION_KEY would lock the stored
 * channel secrets away.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { z } from "zod";

export interface SetupOptions {
  /** The project's checkout: the committed wrangler.toml, worker/, migrations/. */
  root: string;
  /** Where the deployment's own files live (wrangler.toml, state.json, metrics-token). */
  dir: string;
  name: string;
  database: string;
  /** The dashboard's hostname, e.g. fleet.example.com. */
  hostname: string;
  /** The fleet repository, owner/name. */
  repository: string;
  keepWorkersDev: boolean;
  /** The Access application's AUD tag and team domain, once it exists (put as secrets when absent). */
  accessAud?: string;
  accessTeamDomain?: string;
  dryRun: boolean;
  /** github.com's site and API: the GitHub emulator's in tests. */
  githubUrl: string;
  githubApiUrl: string;
  /** Where the manifest flow's local page listens (0: any free port). */
  callbackPort: number;
  env: NodeJS.ProcessEnv;
  out(text: string): void;
}

export class SetupError extends Error {}

const DEFAULT_API_URL = "https://api.github.com";

/** What the GitHub App needs: read the repository and its CI, write update PRs' merges and statuses. */
export const APP_PERMISSIONS = { contents: "write", pull_requests: "write", checks: "read", statuses: "write", metadata: "read" } as const;
export const APP_EVENTS = ["push", "pull_request", "check_suite", "check_run", "status"] as const;

interface Wrangler {
  (args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }>;
}

function wranglerOn(env: NodeJS.ProcessEnv, cwd: string): Wrangler {
  return (args, input) =>
    new Promise((resolve, reject) => {
      const child = spawn("wrangler", args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (data: string) => (stdout += data));
      child.stderr.setEncoding("utf8").on("data", (data: string) => (stderr += data));
      child.once("error", (error) => reject(new SetupError(`cannot run wrangler (${error.message}): run setup with npx, from the project`)));
      child.once("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
      // A wrangler that exits without reading its input (a refusal) closes the pipe: its exit status tells.
      child.stdin.once("error", () => {});
      child.stdin.end(input ?? "");
    });
}

const SetupState = z.object({ deployedConfig: z.string().nullable().default(null) });

interface Step {
  describe: string;
  run(): Promise<void>;
}

export async function runSetup(options: SetupOptions): Promise<number> {
  const wrangler = wranglerOn(options.env, options.root);
  const configFile = path.join(options.dir, "wrangler.toml");
  const stateFile = path.join(options.dir, "state.json");
  const must = async (args: string[], input?: string) => {
    const result = await wrangler(args, input);
    if (result.code !== 0) throw new SetupError(`wrangler ${args.filter((arg) => !arg.startsWith("--config")).join(" ")} failed:\n${result.stderr || result.stdout}`);
    return result.stdout;
  };

  const whoami = await wrangler(["whoami"]);
  if (whoami.code !== 0 || /not authenticated/i.test(whoami.stdout + whoami.stderr)) {
    throw new SetupError("wrangler is not logged in: run `npx wrangler login` first");
  }

  const committed = await fs.readFile(path.join(options.root, "wrangler.toml"), "utf8");
  const databases = z.array(z.object({ name: z.string(), uuid: z.string() })).parse(JSON.parse(await must(["d1", "list", "--json"])));
  let databaseId = databases.find((db) => db.name === options.database)?.uuid ?? null;
  const state = SetupState.parse(await readJson(stateFile) ?? {});
  const steps: Step[] = [];

  if (databaseId === null) {
    steps.push({
      describe: `create the D1 database ${options.database}`,
      run: async () => {
        const created = await must(["d1", "create", options.database]);
        databaseId = /"?database_id"?\s*[=:]\s*"([0-9a-f-]{36})"/.exec(created)?.[1] ?? null;
        if (databaseId === null) throw new SetupError(`wrangler d1 create did not print the database id:\n${created}`);
      },
    });
  }

  // The binary cache's bucket (docs/cache.md): the Worker cannot be deployed with a binding to a bucket that does not exist.
  const bucket = /^bucket_name = "(.*)"$/m.exec(committed)?.[1];
  if (bucket !== undefined) {
    const info = await wrangler(["r2", "bucket", "info", bucket]);
    const said = `${info.stdout}\n${info.stderr}`;
    if (info.code !== 0 && !/does not exist|10006/i.test(said)) {
      const fix = /enable R2|10042/i.test(said) ? "enable R2 for the account in the Cloudflare dashboard (R2 Object Storage), then run setup again" : said.trim();
      throw new SetupError(`wrangler r2 bucket info ${bucket} failed: ${fix}`);
    }
    if (info.code !== 0) steps.push({ describe: `create the R2 bucket ${bucket} (the binary cache)`, run: async () => void (await must(["r2", "bucket", "create", bucket])) });
  }

  const deploymentConfig = () => deploymentWranglerToml(committed, { ...options, databaseId: databaseId ?? "(created above)", configDir: options.dir, root: options.root });
  const existingConfig = await fs.readFile(configFile, "utf8").catch(() => null);
  if (existingConfig !== deploymentConfig() || databaseId === null) {
    steps.push({
      describe: `write the deployment's wrangler configuration ${configFile}${options.keepWorkersDev ? "" : " (workers.dev off)"}`,
      run: async () => {
        await fs.mkdir(options.dir, { recursive: true });
        await fs.writeFile(configFile, deploymentConfig());
      },
    });
  }

  const pendingMigrations = databaseId === null ? true : await migrationsPending(wrangler, configFile, existingConfig !== null);
  if (pendingMigrations) {
    steps.push({ describe: "apply the D1 migrations remotely", run: async () => void (await must(["d1", "migrations", "apply", "DB", "--remote", "--config", configFile])) });
  }

  if (state.deployedConfig !== deploymentConfig() || databaseId === null) {
    steps.push({
      describe: `deploy the Worker ${options.name} (its build runs npm run build:ui)`,
      run: async () => {
        await must(["deploy", "--config", configFile]);
        await fs.writeFile(stateFile, `${JSON.stringify({ deployedConfig: deploymentConfig() }, null, 2)}\n`);
      },
    });
  }

  const existingSecrets = existingConfig === null ? new Set<string>() : await secretNames(wrangler, configFile);
  const putSecret = (name: string, value: string) => must(["secret", "put", name, "--config", configFile], value);
  const wanted: Array<[string, () => Promise<string>, string?]> = [
    ["SETTINGS_ENCRYPTION_KEY", async () => randomBytes(32).toString("base64")],
    ["GITHUB_REPOSITORY", async () => options.repository],
    [
      "METRICS_TOKEN",
      async () => {
        const token = randomBytes(32).toString("hex");
        const file = path.join(options.dir, "metrics-token");
        await fs.writeFile(file, `${token}\n`, { mode: 0o600 });
        return token;
      },
      ` (written to ${path.join(options.dir, "metrics-token")}, readable by you only, for Prometheus)`,
    ],
  ];
  if (options.githubApiUrl !== DEFAULT_API_URL) wanted.push(["GITHUB_API_URL", async () => options.githubApiUrl]);
  const { accessAud, accessTeamDomain } = options;
  if (accessAud !== undefined) wanted.push(["ACCESS_AUD", async () => accessAud]);
  if (accessTeamDomain !== undefined) wanted.push(["ACCESS_TEAM_DOMAIN", async () => accessTeamDomain]);
  for (const [name, value, note] of wanted) {
    if (!existingSecrets.has(name)) steps.push({ describe: `put the secret ${name}${note ?? ""}`, run: async () => void (await putSecret(name, await value())) });
  }

  if (!existingSecrets.has("GITHUB_APP_ID") && !existingSecrets.has("GITHUB_TOKEN")) {
    steps.push({
      describe: `register the GitHub App through GitHub's manifest flow and put GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_WEBHOOK_SECRET`,
      run: () => registerGitHubApp(options, putSecret),
    });
  }

  if (steps.length === 0) {
    options.out("Nothing to do: the deployment is set up.\n");
  } else {
    options.out(`${options.dryRun ? "The plan (--dry-run: nothing is done)" : "The plan"}:\n${steps.map((step, i) => `  ${i + 1}. ${step.describe}`).join("\n")}\n`);
    if (!options.dryRun) {
      for (const [i, step] of steps.entries()) {
        options.out(`${i + 1}. ${step.describe}…\n`);
        await step.run();
      }
    }
  }
  options.out(accessSteps(options));
  return 0;
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fs.readFile(file, "utf8"));
  } catch {
    return null;
  }
}

async function migrationsPending(wrangler: Wrangler, configFile: string, configExists: boolean): Promise<boolean> {
  if (!configExists) return true;
  const listed = await wrangler(["d1", "migrations", "list", "DB", "--remote", "--config", configFile]);
  return listed.code !== 0 || !/No migrations to apply/i.test(listed.stdout);
}

async function secretNames(wrangler: Wrangler, configFile: string): Promise<Set<string>> {
  const listed = await wrangler(["secret", "list", "--format", "json", "--config", configFile]);
  // A Worker not deployed yet has no secrets to list.
  if (listed.code !== 0) return new Set();
  return new Set(z.array(z.object({ name: z.string() })).parse(JSON.parse(listed.stdout)).map((secret) => secret.name));
}

/** The committed wrangler.toml with this deployment's name, database, dashboard URL, paths from `configDir`. */
export function deploymentWranglerToml(
  committed: string,
  options: { name: string; database: string; databaseId: string; hostname: string; keepWorkersDev: boolean; configDir: string; root: string },
): string {
  const relative = (file: string) => path.relative(options.configDir, path.join(options.root, file)) || ".";
  const body = committed
    .replace(/^name = ".*"$/m, `name = "${options.name}"`)
    .replace(/^main = "(.*)"$/m, (_line, file: string) => `main = "${relative(file)}"`)
    .replace(/^directory = "(.*)"$/m, (_line, dir: string) => `directory = "${relative(dir)}"`)
    .replace(/^migrations_dir = "(.*)"$/m, (_line, dir: string) => `migrations_dir = "${relative(dir)}"`)
    .replace(/^database_name = ".*"$/m, `database_name = "${options.database}"`)
    .replace(/^database_id = ".*"$/m, `database_id = "${options.databaseId}"`)
    .replace(/^DASHBOARD_URL = ".*"$/m, `DASHBOARD_URL = "https://${options.hostname}"`);
  // Top-level keys go before the first table, after the committed ones.
  const firstTable = body.search(/^\[/m);
  const topLevel = [
    `workers_dev = ${options.keepWorkersDev}`,
    `routes = [{ pattern = "${options.hostname}", custom_domain = true }]`,
    "",
    "[build]",
    `command = "npm run build:ui"`,
    // wrangler runs the build in this directory as it is written (not relative to this file): the checkout.
    `cwd = "${options.root.replace(/\/+$/, "")}"`,
    "",
  ].join("\n");
  return `# Written by \`nixfleet setup\` for this deployment; the committed wrangler.toml is the template.\n${body.slice(0, firstTable)}${topLevel}\n${body.slice(firstTable)}`;
}

function accessSteps(options: SetupOptions): string {
  return `
Cloudflare Access (Zero Trust → Access → Applications; docs/operations.md#cloudflare-access):
  1. Add a self-hosted application for ${options.hostname}; allow the people who may see the dashboard.
  2. Add a second policy, action Bypass, for https://${options.hostname}/api/agent/*, https://${options.hostname}/webhooks/github
     https://${options.hostname}/metrics and https://${options.hostname}/cache/* (agents, GitHub, Prometheus and Nix
     authenticate themselves).
  3. Run setup again with the application's AUD tag and the team domain, which it puts as secrets:
       npx nixfleet setup --access-aud <AUD tag> --access-team-domain https://<team>.cloudflareaccess.com
Then check it: npx nixfleet doctor https://${options.hostname}
`;
}

/**
 * GitHub's manifest flow: a local page posts the manifest to GitHub's form; GitHub sends the person back
 * to the local callback with a code, which is converted into the App's id, key and webhook secret.
 */
async function registerGitHubApp(options: SetupOptions, putSecret: (name: string, value: string) => Promise<string>): Promise<void> {
  const state = randomBytes(16).toString("hex");
  const [owner] = options.repository.split("/");
  let finish: (result: { ok: true } | { ok: false; error: Error }) => void = () => {};
  const finished = new Promise<{ ok: true } | { ok: false; error: Error }>((resolve) => (finish = resolve));
  let base = "";
  const manifest = () => ({
    name: `NixFleet ${options.hostname}`.slice(0, 34),
    url: `https://${options.hostname}`,
    hook_attributes: { url: `https://${options.hostname}/webhooks/github`, active: true },
    redirect_url: `${base}/callback`,
    public: false,
    default_permissions: APP_PERMISSIONS,
    default_events: APP_EVENTS,
  });
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", base);
    if (url.pathname === "/") {
      const action = `${options.githubUrl}/settings/apps/new?state=${state}`;
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(
        `<!doctype html><title>Register the NixFleet GitHub App</title><form method="post" action="${escapeHtml(action)}">` +
          `<input type="hidden" name="manifest" value="${escapeHtml(JSON.stringify(manifest()))}">` +
          `<p>This registers a GitHub App for ${escapeHtml(options.repository)} (owner ${escapeHtml(owner ?? "")}).</p><button type="submit">Register on GitHub</button></form>`,
      );
      return;
    }
    if (url.pathname === "/callback") {
      const code = url.searchParams.get("code");
      if (url.searchParams.get("state") !== state || code === null) {
        res.writeHead(400, { "content-type": "text/plain" }).end("This is not the answer to the form setup opened.");
        return;
      }
      void convert(code).then(
        (app) => {
          res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
          res.end(`<!doctype html><p>The App is registered. Now install it on ${escapeHtml(options.repository)}: <a href="${escapeHtml(app.html_url)}/installations/new">${escapeHtml(app.html_url)}/installations/new</a></p>`);
          finish({ ok: true });
        },
        (error: unknown) => {
          res.writeHead(502, { "content-type": "text/plain" }).end(String(error));
          finish({ ok: false, error: error instanceof Error ? error : new Error(String(error)) });
        },
      );
      return;
    }
    res.writeHead(404).end();
  });
  const convert = async (code: string) => {
    const response = await fetch(`${options.githubApiUrl}/app-manifests/${encodeURIComponent(code)}/conversions`, {
      method: "POST",
      headers: { accept: "application/vnd.github+json" },
    });
    if (response.status !== 201) throw new SetupError(`GitHub refused the App's conversion (${response.status}): ${await response.text()}`);
    const app = z.object({ id: z.number(), html_url: z.string(), pem: z.string(), webhook_secret: z.string() }).parse(await response.json());
    await putSecret("GITHUB_APP_ID", String(app.id));
    await putSecret("GITHUB_APP_PRIVATE_KEY", app.pem);
    await putSecret("GITHUB_WEBHOOK_SECRET", app.webhook_secret);
    options.out(`   The App is registered (id ${app.id}). Install it on ${options.repository}: ${app.html_url}/installations/new\n`);
    return app;
  };
  await new Promise<void>((resolve) => server.listen(options.callbackPort, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  options.out(`   Open ${base}/ in your browser to register the GitHub App.\n`);
  const result = await finished;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  if (!result.ok) throw result.error;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
