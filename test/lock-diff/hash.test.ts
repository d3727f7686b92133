import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Sha256Hex } from "../../common/protocol.ts";
import { flakeLockHash } from "../../common/lock-diff.ts";
import { fixturePath } from "./helpers.ts";

const nodeSha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

describe("flakeLockHash", () => {
  it("is the sha256 hex of the file's raw bytes, as node:crypto computes it", async () => {
    for (const name of ["large-before.lock", "large-after.lock", "forges.lock"]) {
      const bytes = readFileSync(fixturePath(name));
      const hash = await flakeLockHash(bytes);
      expect(hash, name).toBe(nodeSha256(bytes));
      expect(Sha256Hex.safeParse(hash).success).toBe(true);
    }
  });

  it("hashes a string as its UTF-8 bytes, so text and bytes of the same file agree", async () => {
    const text = '{ "path": "/home/jürgen/nixcfg-private", "owner": "~rycee" }\n';
    expect(await flakeLockHash(text)).toBe(nodeSha256(Buffer.from(text, "utf8")));
    const bytes = readFileSync(fixturePath("large-before.lock"));
    expect(await flakeLockHash(bytes.toString("utf8"))).toBe(await flakeLockHash(bytes));
  });

  it("hashes only the bytes a Uint8Array view covers, not its whole buffer", async () => {
    const whole = new TextEncoder().encode("xx{}yy");
    expect(await flakeLockHash(whole.subarray(2, 4))).toBe(nodeSha256("{}"));
  });

  it("changes when only formatting changes, because it hashes bytes rather than JSON", async () => {
    const compact = '{"nodes":{"root":{}},"root":"root","version":7}';
    expect(await flakeLockHash(compact)).not.toBe(await flakeLockHash(compact + "\n"));
  });

  it("gives the well-known digest of the empty input", async () => {
    expect(await flakeLockHash("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });
});
