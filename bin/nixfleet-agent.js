#!/usr/bin/env node
// Runs the bundled agent, dist/agent/nixfleet-agent.mjs (`npm run build:agent`;
// the Nix package installs only that file): plain JavaScript, so Node loads no
// TypeScript stripper and the agent holds far less memory (docs/hosts.md).
// In a checkout without the bundle, or with one older than the agent's
// sources, it runs agent/cli.ts through Node's type stripping instead, so an
// edit is never hidden behind a stale bundle.
import * as fs from "node:fs";

const root = new URL("../", import.meta.url);
const bundle = new URL("dist/agent/nixfleet-agent.mjs", root);
const sourceDirs = ["agent", "common"].map((dir) => new URL(`${dir}/`, root));

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const url = new URL(entry.isDirectory() ? `${entry.name}/` : entry.name, dir);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(url) : fs.statSync(url).mtimeMs);
  }
  return newest;
}

function bundleIsCurrent() {
  const built = fs.statSync(bundle, { throwIfNoEntry: false });
  if (built === undefined) return false;
  const sources = sourceDirs.filter((dir) => fs.existsSync(dir));
  return sources.every((dir) => newestSource(dir) <= built.mtimeMs);
}

if (bundleIsCurrent()) {
  await import(bundle.href);
} else {
  const { runCli } = await import("../agent/cli.ts");
  runCli();
}
