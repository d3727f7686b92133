/**
 * A stand-in `wrangler` for `nixfleet setup`'s tests: an executable script first on PATH that records
 * every call (its arguments and what came on stdin) and keeps a small Cloudflare account in a JSON file
 * (databases, R2 buckets, whether migrations ran, whether the Worker is deployed, its secrets). It answers the
 * commands setup uses the way wrangler 4 prints them.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { z } from "zod";

export const FakeAccount = z.object({
  databases: z.array(z.object({ name: z.string(), uuid: z.string() })),
  buckets: z.array(z.string()),
  migrated: z.boolean(),
  deployed: z.boolean(),
  secrets: z.record(z.string(), z.string()),
});
export type FakeAccount = z.infer<typeof FakeAccount>;

export const WranglerCall = z.object({ args: z.array(z.string()), stdin: z.string() });
export type WranglerCall = z.infer<typeof WranglerCall>;

export interface FakeWrangler {
  /** Put first on PATH. */
  binDir: string;
  account(): Promise<FakeAccount>;
  calls(): Promise<WranglerCall[]>;
}

const SCRIPT = String.raw`#!/usr/bin/env node
const fs = require("node:fs");
const { randomUUID } = require("node:crypto");
const [stateFile, logFile] = [process.env.FAKE_WRANGLER_ACCOUNT, process.env.FAKE_WRANGLER_CALLS];
const args = process.argv.slice(2);
const stdin = process.stdin.isTTY ? "" : fs.readFileSync(0, "utf8");
fs.appendFileSync(logFile, JSON.stringify({ args, stdin }) + "\n");
const account = JSON.parse(fs.readFileSync(stateFile, "utf8"));
const save = () => fs.writeFileSync(stateFile, JSON.stringify(account));
const is = (...words) => words.every((word, i) => args[i] === word);
if (is("whoami")) {
  console.log("You are logged in with an OAuth Token, associated with the email someone@example.com.");
} else if (is("d1", "list")) {
  console.log(JSON.stringify(account.databases.map((db) => ({ ...db, created_at: "2026-12-06T00:00:00Z" }))));
} else if (is("d1", "create")) {
  const db = { name: args[2], uuid: randomUUID() };
  account.databases.push(db);
  save();
  console.log("Successfully created DB '" + db.name + "'\n\n[[d1_databases]]\nbinding = \"DB\"\ndatabase_name = \"" + db.name + "\"\ndatabase_id = \"" + db.uuid + "\"");
} else if (is("r2", "bucket", "info")) {
  if (!account.buckets.includes(args[3])) {
    console.error("✘ [ERROR] The specified bucket does not exist. [code: 10006]");
    process.exit(1);
  }
  console.log("name: " + args[3]);
} else if (is("r2", "bucket", "create")) {
  account.buckets.push(args[3]);
  save();
  console.log("✅ Created bucket '" + args[3] + "' with default storage class of Standard.");
} else if (is("d1", "migrations", "list")) {
  console.log(account.migrated ? "✅ No migrations to apply!" : "Migrations to be applied:\n0001_init.sql");
} else if (is("d1", "migrations", "apply")) {
  account.migrated = true;
  save();
  console.log("✅ Applied");
} else if (is("deploy")) {
  account.deployed = true;
  save();
  console.log("Deployed");
} else if (is("secret", "list")) {
  if (!account.deployed) {
    console.error("This Worker does not exist on your account.");
    process.exit(1);
  }
  console.log(JSON.stringify(Object.keys(account.secrets).map((name) => ({ name, type: "secret_text" }))));
} else if (is("secret", "put")) {
  account.secrets[args[2]] = stdin;
  save();
  console.log("✨ Success! Uploaded secret " + args[2]);
} else {
  console.error("fake wrangler: unknown command " + args.join(" "));
  process.exit(2);
}
`;

/** Writes the script and an empty account under `dir`; the returned env entries make setup use it. */
export async function installFakeWrangler(dir: string): Promise<FakeWrangler & { env: Record<string, string> }> {
  const binDir = path.join(dir, "bin");
  await fs.mkdir(binDir, { recursive: true });
  const script = path.join(binDir, "wrangler");
  // CommonJS, whatever package.json says about the folder it runs in.
  await fs.writeFile(path.join(binDir, "package.json"), '{ "type": "commonjs" }\n');
  await fs.writeFile(script, SCRIPT, { mode: 0o755 });
  const accountFile = path.join(dir, "account.json");
  const callsFile = path.join(dir, "calls.jsonl");
  await fs.writeFile(accountFile, JSON.stringify({ databases: [], buckets: [], migrated: false, deployed: false, secrets: {} }));
  await fs.writeFile(callsFile, "");
  return {
    binDir,
    env: { FAKE_WRANGLER_ACCOUNT: accountFile, FAKE_WRANGLER_CALLS: callsFile, PATH: `${binDir}:${process.env.PATH ?? ""}` },
    account: async () => FakeAccount.parse(JSON.parse(await fs.readFile(accountFile, "utf8"))),
    calls: async () =>
      (await fs.readFile(callsFile, "utf8"))
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => WranglerCall.parse(JSON.parse(line))),
  };
}
