/**
 * `nixfleet-agent cache push` without Nix or a network: the order it sends narinfos in and the usage it
 * refuses. test/e2e/bundled-agent.test.ts runs it for real (real Nix, the local Worker and R2).
 */
import { describe, expect, it } from "vitest";
import { cacheCommand, MIN_PART_SIZE, referencesFirst } from "../../agent/cache-push.ts";
import type { NarInfo } from "../../common/narinfo.ts";

const info = (name: string, references: string[]): NarInfo => ({
  storePath: `/nix/store/${name}`,
  url: `nar/${"0".repeat(52)}.nar`,
  narHash: `sha256:${"0".repeat(52)}`,
  narSize: 1,
  references,
  sigs: [],
});

const A = `${"a".repeat(32)}-a`;
const B = `${"b".repeat(32)}-b`;
const C = `${"c".repeat(32)}-c`;

describe("cache push", () => {
  it("sends every narinfo after those of its references, a self-reference and references outside the set ignored", () => {
    const outside = `${"d".repeat(32)}-outside`;
    const ordered = referencesFirst([info(A, [B, C, A]), info(C, [outside]), info(B, [C])]).map((narinfo) => narinfo.storePath.slice(11));
    expect(ordered).toEqual([C, B, A]);
  });

  it.each([
    [["push", "--url", "http://127.0.0.1:1", "--token-file", "t", "--secret-key-file", "k", "--part-size", String(MIN_PART_SIZE - 1), "/nix/store/x"], "--part-size must be"],
    [["push", "--url", "http://127.0.0.1:1", "--token-file", "t", "--secret-key-file", "k", "--compression", "gzip", "/nix/store/x"], "--compression must be one of xz, zstd, bzip2, none"],
    [["push", "--url", "http://127.0.0.1:1", "--token-file", "t", "/nix/store/x"], "no --secret-key-file"],
    [["push", "--url", "http://127.0.0.1:1", "--token-file", "t", "--secret-key-file", "k"], "name at least one store path"],
    [["pull"], "unknown cache command pull"],
    [["push", "--url", "http://127.0.0.1:1", "--token-file", "t", "--secret-key-file", "k", "--commit", "a".repeat(40), "/nix/store/x"], "a manifest needs --commit, --tree and at least one --host NAME=PATH"],
    [["push", "--url", "http://127.0.0.1:1", "--token-file", "t", "--secret-key-file", "k", "--commit", "a".repeat(40), "--tree", "b".repeat(40), "--host", "/nix/store/x"], "--host takes NAME=PATH"],
  ])("refuses %j with exit 64, saying what is wrong", async (argv, message) => {
    const err: string[] = [];
    const code = await cacheCommand(argv, {}, { stdout: () => {}, stderr: (text) => err.push(text) });
    expect(code).toBe(64);
    expect(err.join("")).toContain(message);
  });
});
