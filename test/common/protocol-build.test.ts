import { describe, expect, it } from "vitest";
import { CommandDelivery, CommandResult, EXCLUSIVE_COMMAND_KINDS } from "../../common/protocol.ts";

const delivery = { id: "cmd_0123456789", kind: "build", createdAt: "2026-01-01T00:00:00.000Z", deadlineAt: "2026-01-01T01:00:00.000Z" };
const sha = "0123456789abcdef0123456789abcdef01234567";
const build = { commit: sha, storePath: "/nix/store/abc-nixos-system-web1", durationMs: 1200, closureDiff: null };

describe("the build in the protocol", () => {
  it("a delivery's commit defaults to null, so an older control plane's deliveries still parse", () => {
    expect(CommandDelivery.parse(delivery).commit).toBeNull();
    expect(CommandDelivery.parse({ ...delivery, commit: sha }).commit).toBe(sha);
  });

  it("refuses a commit that is not a full sha", () => {
    expect(CommandDelivery.safeParse({ ...delivery, commit: "0123abc" }).success).toBe(false);
    expect(CommandDelivery.safeParse({ ...delivery, commit: "main" }).success).toBe(false);
  });

  it("is one at a time with the commands that change the host", () => {
    expect(EXCLUSIVE_COMMAND_KINDS.has("build")).toBe(true);
  });

  it("carries a build's store path, duration and closure diff in the result", () => {
    const closureDiff = { entries: [{ name: "hello", old: ["1.0"], new: ["1.1"], sizeDelta: 28672 }], totalSizeDelta: 28672 };
    const parsed = CommandResult.parse({ build: { ...build, closureDiff } });
    expect(parsed.build).toEqual({ ...build, comparedWith: null, closureDiff: { ...closureDiff, omitted: 0 } });
  });

  it("bounds what a build result may carry", () => {
    const entry = { name: "p", old: [], new: ["1"], sizeDelta: 0 };
    const tooMany = { entries: Array.from({ length: 2001 }, () => entry), totalSizeDelta: 0 };
    expect(CommandResult.safeParse({ build: { ...build, closureDiff: tooMany } }).success).toBe(false);
    expect(CommandResult.safeParse({ build: { ...build, errorTail: "x".repeat(4001) } }).success).toBe(false);
    expect(CommandResult.safeParse({ build: { ...build, closureDiff: { entries: [{ ...entry, sizeDelta: 1.5 }], totalSizeDelta: 0 } } }).success).toBe(false);
    expect(CommandResult.safeParse({ build: { ...build, commit: "HEAD" } }).success).toBe(false);
  });
});
