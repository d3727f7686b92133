import { describe, expect, it } from "vitest";
import { FAILURE_TAIL_LINES, OutputLines, classifyLines, outputLines, type OutputLine } from "../../ui/common/output-lines.ts";
import type { CommandState } from "../../common/protocol.ts";
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

describe("classifyLines", () => {
  const out = (text: string): OutputLine => ({ stream: "stdout", text });
  const err = (text: string): OutputLine => ({ stream: "stderr", text });
  const say = (text: string): OutputLine => ({ stream: "system", text });
  const cases: Array<{ name: string; state: CommandState; lines: OutputLine[]; kinds: string[] }> = [
    {
      name: "a successful fetch's progress on stderr is stderr, not an error",
      state: "succeeded",
      lines: [say("$ git fetch"), err("From /srv/fleet"), err("   5ac4024..64ef72a  main -> origin/main"), say("now at 64ef72a")],
      kinds: ["system", "stderr", "stderr", "system"],
    },
    {
      name: "a running command's stderr is not an error yet",
      state: "running",
      lines: [say("$ git checkout"), err("Preparing worktree (detached HEAD 64ef72a)")],
      kinds: ["system", "stderr"],
    },
    {
      name: "git's fatal: and error: are errors even while the command runs",
      state: "running",
      lines: [err("fatal: couldn't find remote ref nope"), err("error: pathspec 'nope' did not match any file(s) known to git")],
      kinds: ["error", "error"],
    },
    {
      name: "a tool's error prefix on stdout is an error (a detached switch's log merges both streams)",
      state: "failed",
      lines: [say("$ nixos-rebuild switch"), out("building the system configuration..."), out("error: attribute 'x' missing")],
      kinds: ["system", "stdout", "error"],
    },
    {
      name: "nix retrying a cache (warning: error: …) and git's hint: are not errors",
      state: "succeeded",
      lines: [err("warning: error: unable to download 'https://cache.nixos.org/nix-cache-info'; retrying"), err("hint: use --force")],
      kinds: ["stderr", "stderr"],
    },
    {
      name: "the failed step's stderr is the failure; the successful step before it is not",
      state: "failed",
      lines: [say("$ git fetch"), err("From /srv/fleet"), say("$ git checkout"), err("      > oops"), out("a stdout line"), err("last words")],
      kinds: ["system", "stderr", "system", "error", "stdout", "error"],
    },
    {
      name: "the agent's closing lines after the failing step do not hide its tail",
      state: "failed",
      lines: [say("$ nix build"), err("       > oops"), say("the build failed")],
      kinds: ["system", "error", "system"],
    },
    {
      name: "a cancelled or timed-out command's stderr tail is not an error",
      state: "cancelled",
      lines: [say("$ nix build"), err("building '/nix/store/x.drv'...")],
      kinds: ["system", "stderr"],
    },
    {
      name: "the agent's own lines stay system lines, whatever they say",
      state: "failed",
      lines: [say("error: the clone is gone")],
      kinds: ["system"],
    },
  ];
  it.each(cases)("$name", ({ state, lines, kinds }) => {
    expect(classifyLines(lines, state)).toEqual(kinds);
  });

  it(`marks only the last ${FAILURE_TAIL_LINES} stderr lines of a failed step`, () => {
    const lines = [say("$ nix build"), ...Array.from({ length: FAILURE_TAIL_LINES + 5 }, (_, i) => err(`log line ${i}`))];
    const kinds = classifyLines(lines, "failed");
    expect(kinds.filter((kind) => kind === "error")).toHaveLength(FAILURE_TAIL_LINES);
    expect(kinds.slice(1, 6)).toEqual(Array(5).fill("stderr"));
    expect(kinds.at(-1)).toBe("error");
  });
});
