import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobStore, SEEN_COMMANDS_LIMIT } from "../../agent/job-store.ts";
import { createLogger, silentLogger } from "../../agent/logger.ts";

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-store-"));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const delivery = (n: number) => ({
  id: `cmd_${String(n).padStart(12, "0")}`,
  kind: "refresh" as const,
  target: null,
  commit: null,
  generation: null,
  dryRun: false,
  gc: null,
  activation: null,
  builds: [],
  createdAt: "2025-01-01T00:00:00.000Z",
  deadlineAt: "2025-01-01T00:02:00.000Z",
});
const finished = { type: "finished", at: "2025-01-01T00:00:01.000Z", outcome: "succeeded", exitCode: 0, error: null, result: {} } as const;

describe("job store", () => {
  it("remembers the last seen commands across reopening, bounded, keeping unreported ones", async () => {
    const store = await JobStore.open(root, silentLogger);
    await store.recordReceived(delivery(0), "now");
    await store.recordFinished(delivery(0).id, finished); // finished but never reported: must survive pruning
    for (let n = 1; n <= SEEN_COMMANDS_LIMIT + 10; n++) {
      await store.recordReceived(delivery(n), "now");
      await store.recordFinished(delivery(n).id, finished);
      await store.markReported(delivery(n).id);
    }
    const reopened = await JobStore.open(root, silentLogger);
    expect(reopened.hasSeen(delivery(0).id)).toBe(true);
    expect(reopened.hasSeen(delivery(1).id)).toBe(false);
    expect(reopened.hasSeen(delivery(SEEN_COMMANDS_LIMIT + 10).id)).toBe(true);
    expect(reopened.unreported().map((record) => record.id)).toEqual([delivery(0).id]);
  });

  it("starts afresh from a damaged state file and says so", async () => {
    await fs.writeFile(path.join(root, "commands.json"), '{"commands": [{"id": 42}]}');
    await fs.writeFile(path.join(root, "systems.json"), "not json");
    const lines: string[] = [];
    const store = await JobStore.open(root, createLogger({ write: (line) => lines.push(line) }));
    expect(store.unfinished()).toEqual([]);
    expect(lines.filter((line) => line.includes("WARN"))).toHaveLength(2);
  });

  it("maps systems to the commits that built them", async () => {
    const store = await JobStore.open(root, silentLogger);
    const commit = "a".repeat(40);
    await store.recordBuilt("/nix/store/x-nixos-system-web1", commit);
    await store.recordDesired(commit, "/nix/store/x-nixos-system-web1");
    const reopened = await JobStore.open(root, silentLogger);
    expect(reopened.builtFromCommit("/nix/store/x-nixos-system-web1")).toBe(commit);
    expect(reopened.builtFromCommit("/nix/store/other")).toBeNull();
    expect(reopened.desiredSystem(commit)).toBe("/nix/store/x-nixos-system-web1");
  });

  it("keeps across reopening which signed manifest named each system, and as the host's the one recorded last (a rollback's takes it back)", async () => {
    const store = await JobStore.open(root, silentLogger);
    const first = { commit: "a".repeat(40), created: "2026-12-07T03:00:00.000Z" };
    const second = { commit: "b".repeat(40), created: "2026-12-07T04:00:00.000Z" };
    await store.recordManifest(first, "/nix/store/a-nixos-system-web1");
    await store.recordManifest(second, "/nix/store/b-nixos-system-web1");
    await store.recordManifest(first, "/nix/store/a-nixos-system-web1");
    const reopened = await JobStore.open(root, silentLogger);
    expect(reopened.runningManifest()).toEqual(first);
    expect(reopened.manifestOf("/nix/store/a-nixos-system-web1")).toEqual(first);
    expect(reopened.manifestOf("/nix/store/b-nixos-system-web1")).toEqual(second);
    expect(reopened.manifestOf("/nix/store/c-nixos-system-web1")).toBeNull();
  });
});
