import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nixAvailable } from "../fixtures/nix/require-nix.ts";
import { createHarness, type Harness } from "./harness.ts";

const exec = promisify(execFile);
let h: Harness;

beforeEach(async () => {
  h = await createHarness({ lock: nixAvailable });
});

afterEach(async () => {
  await h.cleanup();
  expect(h.plane.protocolErrors).toEqual([]);
});

const clone = () => path.join(h.stateDir, "repo");
const git = async (...args: string[]) => (await exec("git", ["-C", clone(), ...args], { env: h.env })).stdout.trim();

describe("pull", () => {
  it("clones on first use, then moves the clone to a newly pushed commit", async () => {
    await h.startAgent();
    const first = await h.run("pull");
    expect(first.finished).toMatchObject({ outcome: "succeeded", error: null });
    expect(first.finished.result).toEqual({ commitBefore: null, commitAfter: await h.fleet.head() });

    const before = await h.fleet.head();
    const after = await h.fleet.setHost("web1", "web1 generation 2");
    const second = await h.run("pull");
    expect(second.finished.outcome).toBe("succeeded");
    expect(second.finished.result).toEqual({ commitBefore: before, commitAfter: after });
    expect(await git("rev-parse", "HEAD")).toBe(after);
    expect(h.plane.output(second.id)).toContain("$ git -C");

    const report = await h.plane.waitFor(() => (h.plane.lastReport()?.repo.commit.value === after ? h.plane.lastReport() : undefined), "a report at the new commit");
    expect(report.repo).toEqual({ commit: { value: after }, branch: { value: "main" }, dirty: false });
  });

  it("throws away local changes and local commits in its clone", async () => {
    await h.startAgent();
    await h.run("pull");
    await fs.writeFile(path.join(clone(), "hosts", "web1.txt"), "edited by hand");
    await fs.writeFile(path.join(clone(), "stray-file"), "untracked");
    await git("commit", "--quiet", "-am", "a local commit that origin does not have");
    await fs.writeFile(path.join(clone(), "flake.nix"), "# broken by hand\n");

    const { finished } = await h.run("pull");
    expect(finished.outcome).toBe("succeeded");
    expect(finished.result.commitAfter).toBe(await h.fleet.head());
    expect(await git("rev-parse", "HEAD")).toBe(await h.fleet.head());
    expect(await git("status", "--porcelain", "--untracked-files=all")).toBe("");
    await expect(fs.access(path.join(clone(), "stray-file"))).rejects.toThrow();
  });

  it("fails with git's own error when origin cannot be reached, keeping the clone as it was", async () => {
    await h.startAgent();
    await h.run("pull");
    const head = await git("rev-parse", "HEAD");
    await fs.rename(h.fleet.origin, `${h.fleet.origin}.gone`);

    const { id, finished } = await h.run("pull");
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toMatch(/git fetch exited with code 128: .*(does not appear to be a git repository|Could not read from remote)/s);
    expect(finished.result).toEqual({ commitBefore: head, commitAfter: null });
    expect(h.plane.output(id)).toContain("does not appear to be a git repository");
    expect(await git("rev-parse", "HEAD")).toBe(head);
  });

  it("fails a first pull from a wrong URL and leaves no half clone", async () => {
    await h.startAgent({ repoUrl: path.join(h.root, "no-such-repo.git") });
    const { finished } = await h.run("pull");
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toMatch(/git clone exited with code 128: .*does not exist/s);
    await expect(fs.access(clone())).rejects.toThrow();
    await expect(fs.access(`${clone()}.partial`)).rejects.toThrow();
  });

  it("fails when the configured branch does not exist at origin", async () => {
    await h.startAgent({ branch: "no-such-branch" });
    const { finished } = await h.run("pull");
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toMatch(/couldn't find remote ref refs\/heads\/no-such-branch/);
  });
});
