import { describe, expect, it } from "vitest";
import { OutputLines, outputLines } from "../../ui/common/output-lines.ts";
import { chunk } from "./fixtures.ts";

describe("outputLines", () => {
  it("joins a line split across chunks and splits chunks holding several lines", () => {
    expect(outputLines([chunk(0, "building the sys"), chunk(1, "tem\nactivating\n"), chunk(2, "done")])).toEqual([
      { stream: "stdout", text: "building the system" },
      { stream: "stdout", text: "activating" },
      { stream: "stdout", text: "done" },
    ]);
  });

  it("keeps stderr and the agent's system lines apart from stdout", () => {
    const lines = outputLines([chunk(0, "$ git pull\n", "system"), chunk(1, "fatal: not a repo\n", "stderr"), chunk(2, "ok\n")]);
    expect(lines.map((line) => line.stream)).toEqual(["system", "stderr", "stdout"]);
  });

  it("does not glue an unfinished stdout line to a stderr line that follows", () => {
    const lines = outputLines([chunk(0, "progress "), chunk(1, "warning\n", "stderr"), chunk(2, "more\n")]);
    expect(lines).toEqual([
      { stream: "stdout", text: "progress " },
      { stream: "stderr", text: "warning" },
      { stream: "stdout", text: "more" },
    ]);
  });

  it("shows what a terminal would: colour codes removed, carriage-return redraws collapsed, CRLF as one newline", () => {
    const lines = outputLines([chunk(0, "\u001b[1;32mok\u001b[0m\r\n"), chunk(1, "[1/3] copying\r[2/3] copying\r[3/3] copied\n")]);
    expect(lines.map((line) => line.text)).toEqual(["ok", "[3/3] copied"]);
  });

  it("takes each sequence number once and orders by it", () => {
    expect(outputLines([chunk(1, "b\n"), chunk(0, "a\n"), chunk(1, "b\n")]).map((line) => line.text)).toEqual(["a", "b"]);
  });
});

describe("OutputLines", () => {
  it("appends incrementally, continuing the open line, and remembers the highest seq", () => {
    const out = new OutputLines();
    out.append([chunk(0, "half")]);
    expect(out.lines).toEqual([{ stream: "stdout", text: "half" }]);
    out.append([chunk(1, " done\nnext")]);
    expect(out.lines.map((line) => line.text)).toEqual(["half done", "next"]);
    out.append([chunk(1, "ignored, seen before")]);
    expect(out.seq).toBe(1);
    expect(out.lines).toHaveLength(2);
  });
});
