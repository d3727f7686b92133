import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { NIXFLEET_VERSION } from "../../common/version.ts";

describe("the shipped version", () => {
  it("is package.json's version, so the Agent compartment compares against what was released", async () => {
    const pkg = z.object({ version: z.string() }).parse(JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")));
    expect(NIXFLEET_VERSION).toBe(pkg.version);
  });
});
