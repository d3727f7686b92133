/**
 * The GitHub integration end to end: the real control plane (wrangler dev,
 * local D1, Durable Objects) and the GitHub emulator (a real bare git
 * repository, GitHub's REST API, signed webhooks) talking over loopback.
 * An update PR is opened, detected with its lock diff, passes CI, is merged
 * through the control plane, and the merge's push moves the fleet's target.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { diffFlakeLocks, lockLastModified, parseFlakeLock } from "../../common/lock-diff.ts";
import { ErrorBody, RepoState, UpdatePr } from "../../common/protocol.ts";
import { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { GitHubClient } from "../../worker/github/client.ts";
import { startControlPlane, type ControlPlane } from "../support/control-plane.ts";
import { eventuallyWith } from "../support/wait.ts";

const run = promisify(execFile);

const SECRET = "e2e-webhook-secret";
const TOKEN = "github_pat_e2e_token";
const OWNER = "example";
const REPO = "fleet";

const RepoResponse = z.object({ repository: z.string().nullable(), branch: z.string(), repo: RepoState.nullable(), problems: z.array(z.string()) });
const UpdatePrsResponse = z.object({ updatePrs: z.array(UpdatePr) });
const MergeResponse = z.object({ merged: z.literal(true), sha: z.string(), updatePr: UpdatePr });
const AuditResponse = z.object({
  entries: z.array(z.object({ actor: z.string(), action: z.string(), target: z.string().nullable(), result: z.string(), details: z.record(z.string(), z.unknown()).nullable() })),
});

let cp: ControlPlane;
let emulator: GitHubEmulator;
let workDir: string;
let client: GitHubClient;

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

async function getRepo() {
  const res = await fetch(`${cp.url}/api/repo`);
  expect(res.status).toBe(200);
  return RepoResponse.parse(await res.json());
}

async function getUpdatePrs() {
  const res = await fetch(`${cp.url}/api/update-prs`);
  expect(res.status).toBe(200);
  return UpdatePrsResponse.parse(await res.json()).updatePrs;
}

/** Admin POSTs from a page of the control plane itself (the CSRF check wants our Origin). */
const adminPost = (path: string, body?: unknown) =>
  fetch(`${cp.url}${path}`, {
    method: "POST",
    headers: { origin: cp.url, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

/** Waits until a probe returns a value (webhooks and waitUntil work take a moment). */
const eventually = eventuallyWith({ timeoutMs: 20_000, intervalMs: 150, details: () => cp.logs().slice(-4000) });

/** Adds a `fleet-modules` input (this very repository, at `rev`) to a lock: GitHub can compare its revs. */
function withFleetModules(lockText: string, rev: string, lastModified: number): string {
  const lock = z.looseObject({ nodes: z.record(z.string(), z.looseObject({ inputs: z.record(z.string(), z.unknown()).optional() })) }).parse(JSON.parse(lockText));
  lock.nodes["fleet-modules"] = {
    locked: { lastModified, narHash: `sha256-${createHash("sha256").update(rev).digest("base64")}`, owner: OWNER, repo: REPO, rev, type: "github" },
    original: { owner: OWNER, repo: REPO, type: "github" },
  };
  const root = lock.nodes["root"];
  if (!root?.inputs) throw new Error("fixture lock has no root inputs");
  root.inputs["fleet-modules"] = "fleet-modules";
  return `${JSON.stringify(lock, null, 2)}\n`;
}

let baseLock: string;
let headLock: string;
const commits: Record<"seed" | "hosts" | "lock", string> = { seed: "", hosts: "", lock: "" };

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "nixfleet-github-flow-"));
  // The emulator binds its port before the control plane is told its URL (a port merely found free could be taken meanwhile), then learns where to send webhooks.
  emulator = new GitHubEmulator({ owner: OWNER, repo: REPO, workDir, webhookSecret: SECRET, token: TOKEN });
  const apiUrl = await emulator.start();
  cp = await startControlPlane({
    vars: { GITHUB_REPOSITORY: `${OWNER}/${REPO}`, GITHUB_WEBHOOK_SECRET: SECRET, GITHUB_TOKEN: TOKEN, GITHUB_API_URL: apiUrl },
  });
  emulator.setWebhookUrl(`${cp.url}/webhooks/github`);
  client = new GitHubClient({ apiUrl, repository: { owner: OWNER, name: REPO, fullName: `${OWNER}/${REPO}` }, auth: { kind: "token", token: TOKEN } });
}, 180_000);

afterAll(async () => {
  await emulator?.stop();
  await cp?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe("GitHub flow against the emulator", () => {
  it("answers GitHub's ping when the hook is created", async () => {
    await emulator.flushWebhooks();
    const ping = emulator.deliveries.find((d) => d.event === "ping");
    expect(ping?.status).toBe(200);
  });

  it("follows pushes: the head, and the sha256 of flake.lock's exact bytes", async () => {
    const before = await readFile(new URL("../lock-diff/fixtures/large-before.lock", import.meta.url), "utf8");
    commits.seed = await emulator.seed({
      "flake.nix": '{\n  description = "example fleet";\n  outputs = { self, ... }: { };\n}\n',
      "flake.lock": before,
      "hosts/hsb0.nix": "{ networking.hostName = \"hsb0\"; }\n",
    });
    const seeded = await eventually("the seed commit and its lock", async () => {
      const { repo } = await getRepo();
      return repo?.head?.sha === commits.seed && repo.lock.hash !== null ? repo : null;
    });
    expect(seeded.lock.hash).toBe(sha256(before));
    expect(seeded.lock.lastModified).toEqual(lockLastModified(parseFlakeLock(before)));
    expect(seeded.lock.lastModified["nixpkgs"]).toBeGreaterThan(1_700_000_000);
    expect(seeded.source).toBe("webhook");

    // A commit that leaves flake.lock alone: the head moves, the hash is kept.
    commits.hosts = (await emulator.pushCommit({ files: { "hosts/hsb0.nix": "{ networking.hostName = \"hsb0\"; services.fail2ban.enable = true; }\n" }, message: "hsb0: enable fail2ban" })).sha;
    const moved = await eventually("the hosts commit", async () => {
      const { repo } = await getRepo();
      return repo?.head?.sha === commits.hosts ? repo : null;
    });
    expect(moved.head).toMatchObject({ message: "hsb0: enable fail2ban" });
    expect(moved.lock.hash).toBe(sha256(before));

    // A commit that changes flake.lock: read again through the API.
    baseLock = withFleetModules(before, commits.seed, 1_759_000_000);
    commits.lock = (await emulator.pushCommit({ files: { "flake.lock": baseLock }, message: "flake.lock: pin fleet-modules" })).sha;
    await eventually("the new lock hash", async () => {
      const { repo } = await getRepo();
      return repo?.head?.sha === commits.lock && repo.lock.hash === sha256(baseLock);
    });
  });

  it("detects an update PR with its per-input lock diff and commit counts", async () => {
    const after = await readFile(new URL("../lock-diff/fixtures/large-after.lock", import.meta.url), "utf8");
    headLock = withFleetModules(after, commits.lock, 1_760_000_000);
    const pr = await emulator.openPullRequest({
      head: "update_flake_lock_action",
      title: "Weekly input update",
      labels: ["automated"],
      files: { "flake.lock": headLock },
      message: "flake.lock: Update",
      user: "github-actions[bot]",
    });
    const detected = await eventually("the update PR with its lock diff", async () => {
      const [first] = await getUpdatePrs();
      return first && first.lockChanges.length > 0 && first.mergeable !== null ? first : null;
    });
    expect(detected).toMatchObject({
      number: pr.number,
      title: "Weekly input update",
      state: "open",
      headSha: pr.head.sha,
      headRef: "update_flake_lock_action",
      baseRef: "main",
      labels: ["automated"],
      mergeable: true,
      superseded: false,
    });
    const expected = diffFlakeLocks(parseFlakeLock(baseLock), parseFlakeLock(headLock));
    expect(detected.lockChanges.map((c) => [c.input, c.kind, c.old?.rev ?? null, c.new?.rev ?? null])).toEqual(
      expected.map((c) => [c.input, c.kind, c.old?.rev ?? null, c.new?.rev ?? null]),
    );
    expect(detected.lockChanges.find((c) => c.input === "nixpkgs")?.kind).toBe("updated");
    // fleet-modules moved from the seed to the lock commit: GitHub's compare counts 2 commits.
    expect(detected.lockChanges.find((c) => c.input === "fleet-modules")).toMatchObject({ kind: "updated", commits: 2 });
    // github.com/NixOS/nixpkgs is not on this GitHub: no count, and no harm.
    expect(detected.lockChanges.find((c) => c.input === "nixpkgs")?.commits).toBeNull();
  });

  it("follows CI on the PR's head", async () => {
    const [pr] = await getUpdatePrs();
    expect(pr?.ciState).toBe("unknown");
    await emulator.setCheckRun(pr!.headSha, { name: "build", status: "in_progress" });
    await eventually("CI pending", async () => (await getUpdatePrs())[0]?.ciState === "pending");
    await emulator.setCheckRun(pr!.headSha, { name: "build", conclusion: "success" });
    await eventually("CI success", async () => (await getUpdatePrs())[0]?.ciState === "success");
  });

  it("answers a merge GitHub refuses with 409 and GitHub's reason, and audits it", async () => {
    const [pr] = await getUpdatePrs();
    emulator.requireChecks(["nixos-tests"]);
    const res = await adminPost(`/api/update-prs/${pr!.number}/merge`, { method: "merge" });
    expect(res.status).toBe(409);
    const error = ErrorBody.parse(await res.json()).error;
    expect(error.code).toBe("merge_refused");
    expect(error.message).toMatch(/nixos-tests/);
    expect((await emulator.pullRequest(pr!.number)).state).toBe("open");
    const audit = AuditResponse.parse(await (await fetch(`${cp.url}/api/audit`)).json());
    expect(audit.entries[0]).toMatchObject({ action: "update-pr.merge", target: `${OWNER}/${REPO}#${pr!.number}`, actor: "developer@localhost" });
    expect(audit.entries[0]?.result).toMatch(/^refused: .*nixos-tests/);
    emulator.requireChecks(false);
  });

  it("merges through the control plane; the push moves the target to the merge commit and its lock", async () => {
    const [pr] = await getUpdatePrs();
    const res = await adminPost(`/api/update-prs/${pr!.number}/merge`, { method: "merge", sha: pr!.headSha });
    expect(res.status).toBe(200);
    const merged = MergeResponse.parse(await res.json());
    expect(merged.updatePr).toMatchObject({ number: pr!.number, state: "merged", mergeCommitSha: merged.sha });
    expect(await emulator.branchSha("main")).toBe(merged.sha);

    const target = await eventually("the merge commit and its lock hash", async () => {
      const { repo } = await getRepo();
      return repo?.head?.sha === merged.sha && repo.lock.hash === sha256(headLock) ? repo : null;
    });
    expect(target.head?.message).toContain(`Merge pull request #${pr!.number}`);
    expect(target.head?.message).toContain("Updated inputs:");
    expect(await getUpdatePrs()).toEqual([]);
    const audit = AuditResponse.parse(await (await fetch(`${cp.url}/api/audit`)).json());
    expect(audit.entries[0]).toMatchObject({ action: "update-pr.merge", result: "merged" });
    expect(audit.entries[0]?.details).toMatchObject({ mergeCommitSha: merged.sha });
  });

  it("gives a redelivered webhook no second effect", async () => {
    await emulator.flushWebhooks();
    const { repo: before } = await getRepo();
    // The push of the hosts commit, sent again: processed twice it would move the head back.
    const old = emulator.deliveries.find((d) => d.event === "push" && d.payload["after"] === commits.hosts && !d.redelivery);
    expect(old).toBeDefined();
    const again = await emulator.redeliver(old!.id);
    expect(again.status).toBe(200);
    expect(await getRepo()).toMatchObject({ repo: before });
  });

  it("reverts the merge through the API client; the fleet's target goes back to the old lock", async () => {
    const merge = (await getRepo()).repo!.head!.sha;
    const reverted = await client.revertCommit({ commitSha: merge, branch: "main" });
    expect(await emulator.branchSha("main")).toBe(reverted.sha);
    const state = await eventually("the revert commit", async () => {
      const { repo } = await getRepo();
      return repo?.head?.sha === reverted.sha && repo.lock.hash === sha256(baseLock) ? repo : null;
    });
    expect(state.head?.message).toMatch(/^Revert "Merge pull request/);
  });

  it("proposes a revert as a pull request from a new branch", async () => {
    const proposed = await client.createRevertPull({ commitSha: commits.hosts, base: "main" });
    const pr = await emulator.pullRequest(proposed.number);
    expect(pr).toMatchObject({ state: "open", title: 'Revert "hsb0: enable fail2ban"', head: { ref: proposed.headRef, sha: proposed.sha } });
    const restored = await client.fileAt("hosts/hsb0.nix", proposed.headRef);
    expect(new TextDecoder().decode(restored!)).toBe('{ networking.hostName = "hsb0"; }\n');
    // Not an update PR: the fleet is not offered it.
    await emulator.flushWebhooks();
    expect(await getUpdatePrs()).toEqual([]);
  });

  it("catches up with a push whose webhook was missed, on the cron trigger", async () => {
    // A commit landed straight in the bare repository: GitHub's state changed, no webhook was sent.
    const git = (...args: string[]) =>
      run("git", ["--git-dir", emulator.cloneUrl, ...args], {
        env: { ...process.env, GIT_AUTHOR_NAME: "Codertocat", GIT_AUTHOR_EMAIL: "codertocat@example.com", GIT_COMMITTER_NAME: "Codertocat", GIT_COMMITTER_EMAIL: "codertocat@example.com" },
      }).then((r) => r.stdout.trim());
    const head = await git("rev-parse", "refs/heads/main");
    const missed = await git("commit-tree", `${head}^{tree}`, "-p", head, "-m", "a push GitHub never told us about");
    await git("update-ref", "refs/heads/main", missed, head);
    expect((await getRepo()).repo?.head?.sha).toBe(head);

    const res = await fetch(`${cp.url}/cdn-cgi/local/scheduled?cron=${encodeURIComponent("*/5 * * * *")}`);
    expect(res.ok).toBe(true);
    const state = await eventually("the scheduled sync", async () => {
      const { repo } = await getRepo();
      return repo?.head?.sha === missed ? repo : null;
    });
    expect(state.source).toBe("schedule");
    expect(state.lock.hash).toBe(sha256(baseLock));
  });

  it("re-reads everything on demand (the dashboard's refresh)", async () => {
    const res = await adminPost("/api/repo/refresh");
    expect(res.status).toBe(200);
    const body = z.object({ repo: RepoState, updatePrs: z.array(UpdatePr) }).parse(await res.json());
    expect(body.repo.head?.sha).toBe(await emulator.branchSha("main"));
    expect(body.repo.lock.hash).toBe(sha256(baseLock));
    expect(body.repo.source).toBe("api");
    expect(body.updatePrs).toEqual([]);
  });
});
