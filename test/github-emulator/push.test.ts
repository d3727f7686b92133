import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PushPayload, git, startEmulator } from "./helpers.ts";

const ZERO = "0".repeat(40);

describe("github emulator: repository and pushes", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it("seeds the default branch so that git clone checks out the seeded files", async () => {
    const env = await startEmulator();
    close = env.close;
    const sha = await env.emulator.seed({ "flake.nix": "{ }\n", "hosts/web1.nix": "{ }\n" }, "Initial commit");

    const dir = join(env.workDir, "clone");
    await git(env.workDir, "clone", "--quiet", env.emulator.cloneUrl, dir);
    expect(await git(dir, "rev-parse", "HEAD")).toBe(sha);
    expect(await git(dir, "rev-parse", "--abbrev-ref", "HEAD")).toBe("main");
    expect(await readFile(join(dir, "hosts/web1.nix"), "utf8")).toBe("{ }\n");
  });

  it("sends a signed push webhook with the right before/after and file lists", async () => {
    const env = await startEmulator();
    close = env.close;
    const first = await env.emulator.seed({ "flake.nix": "{ }\n", "old.txt": "x\n" });
    const { sha, before } = await env.emulator.pushCommit({
      branch: "main",
      files: { "flake.lock": "{}\n", "flake.nix": "{ inputs = { }; }\n", "old.txt": null },
      message: "Add lock",
    });
    await env.emulator.flushWebhooks();

    expect(before).toBe(first);
    const pushes = env.receiver.of("push");
    expect(pushes).toHaveLength(2);
    expect(pushes.every((p) => p.signatureValid)).toBe(true);
    const [seeded, pushed] = env.receiver.payloads("push", PushPayload);
    expect(seeded).toMatchObject({ before: ZERO, after: first, created: true, forced: false, ref: "refs/heads/main" });
    expect(pushed).toMatchObject({ before: first, after: sha, created: false, deleted: false, forced: false });
    expect(pushed?.head_commit?.id).toBe(sha);
    expect(pushed?.commits).toEqual([
      expect.objectContaining({ id: sha, message: "Add lock", added: ["flake.lock"], modified: ["flake.nix"], removed: ["old.txt"] }),
    ]);
    expect(pushed?.repository).toMatchObject({ full_name: "example/fleet", default_branch: "main", clone_url: env.emulator.cloneUrl });
    expect(pushed?.sender.login).toBe("example");
  });

  it("turns a git push into the bare repository into a push webhook, like pushing to GitHub", async () => {
    const env = await startEmulator();
    close = env.close;
    const first = await env.emulator.seed({ "flake.nix": "{ }\n" });
    const dir = join(env.workDir, "clone");
    await git(env.workDir, "clone", "--quiet", env.emulator.cloneUrl, dir);
    await writeFile(join(dir, "README.md"), "fleet\n");
    await git(dir, "add", "README.md");
    await git(dir, "commit", "--quiet", "-m", "Add README");
    const head = await git(dir, "rev-parse", "HEAD");
    await git(dir, "push", "--quiet", "origin", "main");
    await env.emulator.flushWebhooks();

    const pushed = env.receiver.payloads("push", PushPayload).at(-1);
    expect(pushed).toMatchObject({ before: first, after: head, created: false });
    expect(pushed?.commits.map((c) => c.added)).toEqual([["README.md"]]);
    expect(await env.emulator.branchSha("main")).toBe(head);
  });

  it("serves GET /repos/{o}/{r} and /branches/{branch} shaped like GitHub", async () => {
    const env = await startEmulator();
    close = env.close;
    const sha = await env.emulator.seed({ "flake.nix": "{ }\n" }, "Initial commit");
    const repo = await fetch(`${env.emulator.apiUrl}/repos/example/fleet`);
    expect(repo.status).toBe(200);
    expect(repo.headers.get("content-type")).toMatch(/^application\/json/);
    expect(repo.headers.get("x-ratelimit-limit")).toBe("5000");
    expect(Number(repo.headers.get("x-ratelimit-remaining"))).toBeLessThan(5000);
    expect(Number(repo.headers.get("x-ratelimit-reset"))).toBeGreaterThan(Date.now() / 1000);
    expect(repo.headers.get("x-github-request-id")).toMatch(/^[0-9A-F]{4}(:[0-9A-F]{6}){4}$/);
    expect(await repo.json()).toMatchObject({ full_name: "example/fleet", default_branch: "main", private: false, owner: { login: "example" } });

    const branch = await fetch(`${env.emulator.apiUrl}/repos/example/fleet/branches/main`);
    expect(await branch.json()).toMatchObject({ name: "main", commit: { sha, commit: { message: "Initial commit" } }, protected: false });
  });
});
