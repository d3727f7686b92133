import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClosureDiff } from "../../agent/closure-diff.ts";
import { ClosureDiffEntry } from "../../common/protocol.ts";
import { createFleetRepo, type FleetRepo } from "../../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";

const exec = promisify(execFile);
const KiB = 1024;

describe("parseClosureDiff on the lines nix prints", () => {
  it.each([
    ["a version change with its size, coloured as Nix 2.8 prints it", "hello: 1.0 → 1.1, \u001b[31;1m+28.0 KiB\u001b[0m", { name: "hello", old: ["1.0"], new: ["1.1"], sizeDelta: 28 * KiB }],
    ["the same without colours (newer Nix, NO_COLOR)", "hello: 1.0 → 1.1, +28.0 KiB", { name: "hello", old: ["1.0"], new: ["1.1"], sizeDelta: 28 * KiB }],
    ["a shrink", "hello: 1.1 → 1.0, \u001b[32;1m-28.0 KiB\u001b[0m", { name: "hello", old: ["1.1"], new: ["1.0"], sizeDelta: -28 * KiB }],
    ["an added package (∅ before)", "extra: ∅ → 3.0, +20.1 KiB", { name: "extra", old: [], new: ["3.0"], sizeDelta: Math.round(20.1 * KiB) }],
    ["a removed package under 8 KiB (no size printed)", "greeter: 2.0 → ∅", { name: "greeter", old: ["2.0"], new: [], sizeDelta: 0 }],
    ["a path without a version (ε)", "newpkg: ∅ → ε", { name: "newpkg", old: [], new: [""], sizeDelta: 0 }],
    ["several versions on a side", "python3: 3.11.9, 3.12.4 → 3.12.5, +1.5 MiB", { name: "python3", old: ["3.11.9", "3.12.4"], new: ["3.12.5"], sizeDelta: Math.round(1.5 * KiB * KiB) }],
    ["a size change alone", "linux-firmware: -12.5 KiB", { name: "linux-firmware", old: [], new: [], sizeDelta: Math.round(-12.5 * KiB) }],
  ])("%s", (_what, line, entry) => {
    const parsed = parseClosureDiff(`${line}\n`);
    expect(parsed).toEqual({ entries: [entry], omitted: 0, unparsed: [] });
    expect(ClosureDiffEntry.parse(entry)).toEqual(entry);
  });

  it("keeps lines it does not understand apart instead of guessing", () => {
    expect(parseClosureDiff("warning: Git tree is dirty\nhello: 1.0 → 1.1\n\n").unparsed).toEqual(["warning: Git tree is dirty"]);
  });

  it("stops at 2000 entries and counts the rest", () => {
    const text = Array.from({ length: 2005 }, (_, i) => `pkg${i}: 1.0 → 1.1`).join("\n");
    const parsed = parseClosureDiff(text);
    expect(parsed.entries).toHaveLength(2000);
    expect(parsed.omitted).toBe(5);
  });
});

describeWithNix("parseClosureDiff on real `nix store diff-closures` output", () => {
  let root: string;
  let env: NodeJS.ProcessEnv;
  let fleet: FleetRepo;
  let before: string;
  let after: string;
  const diffClosures = async (from: string, to: string) =>
    (await exec("nix", ["store", "diff-closures", from, to], { env })).stdout;

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-closure-diff-"));
    env = isolatedHostEnv(root);
    fleet = await createFleetRepo({ root: path.join(root, "fleet"), hosts: ["web1"], env, packages: { hello: "1.0 12", greeter: "2.0 4" } });
    const build = async (link: string) => {
      await exec("nix", ["build", "--out-link", link, `${fleet.work}#nixosConfigurations.web1.config.system.build.toplevel`], { cwd: fleet.work, env });
      return fs.realpath(link);
    };
    before = await build(path.join(root, "before"));
    await fleet.commit({ "packages/hello.txt": "1.1 40\n", "packages/greeter.txt": null, "packages/extra.txt": "3.0 20\n" }, "hello 1.1, extra 3.0, no greeter");
    after = await build(path.join(root, "after"));
  }, 120_000);

  afterAll(async () => {
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  it("reads versions and size deltas from what nix printed", async () => {
    const text = await diffClosures(before, after);
    const parsed = parseClosureDiff(text);
    expect(parsed.unparsed).toEqual([]);
    const byName = Object.fromEntries(parsed.entries.map((entry) => [entry.name, entry]));
    expect(Object.keys(byName).sort()).toEqual(["extra", "greeter", "hello"]);
    expect(byName.hello).toEqual({ name: "hello", old: ["1.0"], new: ["1.1"], sizeDelta: 28 * KiB });
    // 20 KiB of content plus the NAR framing, which nix rounds to a tenth of a KiB.
    expect(byName.extra).toMatchObject({ old: [], new: ["3.0"] });
    expect(byName.extra!.sizeDelta).toBeGreaterThanOrEqual(20 * KiB);
    expect(byName.extra!.sizeDelta).toBeLessThan(21 * KiB);
    // 4 KiB is under the 8 KiB nix shows, so no size.
    expect(byName.greeter).toEqual({ name: "greeter", old: ["2.0"], new: [], sizeDelta: 0 });
  });

  it("reads the other direction as the mirror image", async () => {
    const parsed = parseClosureDiff(await diffClosures(after, before));
    const hello = parsed.entries.find((entry) => entry.name === "hello");
    expect(hello).toEqual({ name: "hello", old: ["1.1"], new: ["1.0"], sizeDelta: -28 * KiB });
  });

  it("is empty between a system and itself", async () => {
    expect(parseClosureDiff(await diffClosures(before, before))).toEqual({ entries: [], omitted: 0, unparsed: [] });
  });
});
