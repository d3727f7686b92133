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

  it("pulls exactly the delivery's commit when it names one, even after origin moved on", async () => {
    await h.startAgent();
    await h.run("pull");
    const wanted = await h.fleet.setHost("web1", "web1 generation 2");
    const newer = await h.fleet.setHost("web1", "web1 generation 3");

    const { id, finished } = await h.run("pull", { commit: wanted });
    expect(finished.outcome).toBe("succeeded");
    expect(finished.result.commitAfter).toBe(wanted);
    expect(await git("rev-parse", "HEAD")).toBe(wanted);
    expect(await git("symbolic-ref", "--short", "HEAD")).toBe("main");
    expect(await git("rev-parse", "refs/remotes/origin/main")).toBe(newer);
    expect(await git("status", "--porcelain", "--untracked-files=all")).toBe("");
    expect(h.plane.output(id)).toContain(`merge-base --is-ancestor ${wanted}`);
  });

  it("refuses a commit that is not on the branch, with the reason, and leaves the clone alone", async () => {
    await h.startAgent();
    await h.run("pull");
    const head = await git("rev-parse", "HEAD");
    // A commit that exists at origin, but on another branch.
    await exec("git", ["-C", h.fleet.work, "checkout", "--quiet", "-b", "elsewhere"], { env: h.env });
    await fs.writeFile(path.join(h.fleet.work, "hosts", "web1.txt"), "web1 on another branch");
    await exec("git", ["-C", h.fleet.work, "commit", "--quiet", "-am", "not on main"], { env: h.env });
    await exec("git", ["-C", h.fleet.work, "push", "--quiet", "origin", "HEAD:refs/heads/elsewhere"], { env: h.env });
    const elsewhere = (await exec("git", ["-C", h.fleet.work, "rev-parse", "HEAD"], { env: h.env })).stdout.trim();

    const { finished } = await h.run("pull", { commit: elsewhere });
    expect(finished).toMatchObject({ outcome: "failed", result: { commitBefore: head, commitAfter: null } });
    expect(finished.error).toBe(
      `commit ${elsewhere} is not on origin/main: it is not in the repository after fetching main (a commit of another branch, or one that was force-pushed away)`,
    );
    expect(await git("rev-parse", "HEAD")).toBe(head);

    // Known to the clone (fetched into it by hand) but still not on main: refused as well.
    await git("fetch", "--quiet", "origin", "refs/heads/elsewhere");
    const { finished: known } = await h.run("pull", { commit: elsewhere });
    expect(known.error).toBe(`commit ${elsewhere} is not on origin/main: it is not an ancestor of the branch's head`);
    expect(await git("rev-parse", "HEAD")).toBe(head);
  });

  it("fails when the configured branch does not exist at origin", async () => {
    await h.startAgent({ branch: "no-such-branch" });
    const { finished } = await h.run("pull");
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toMatch(/couldn't find remote ref refs\/heads\/no-such-branch/);
  });
});
