import { describe, expect, it } from "vitest";
import { cappedOutput } from "../../agent/commands/build.ts";

describe("a build's streamed output", () => {
  it("passes output on up to the limit, then says once that the rest is left out", () => {
    const sent: string[] = [];
    const said: string[] = [];
    const output = cappedOutput(10, (_stream, data) => sent.push(data), (line) => said.push(line));
    output("stderr", "12345");
    output("stdout", "6789abc");
    output("stderr", "more");
    output("stderr", "and more");
    expect(sent.join("")).toBe("123456789a");
    expect(said).toEqual(["[build output beyond 10 characters left out; a failed build still reports its last lines]"]);
  });
});
