#!/usr/bin/env node
// The `nixfleet` command. The CLI is TypeScript that Node runs through its
// built-in type stripping (no build step), so refuse early, with a clear
// message, on a Node that cannot do that.
if (!process.features.typescript) {
  process.stderr.write(
    `nixfleet: Node.js ${process.version} cannot run TypeScript; use Node 22.18+ or 23.6+ (or pass --experimental-strip-types).\n`,
  );
  process.exit(2);
}
const { run } = await import("../cli/nixfleet.ts");
await run();
