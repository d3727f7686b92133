/**
 * Turns a command's output chunks into lines for display. Chunks are
 * arbitrary slices of a stream (a line may span chunks), stdout and stderr
 * interleave, and tools draw progress with `\r` and colour with ANSI codes.
 */
import type { CommandState, OutputStream, StoredOutputChunk } from "../../common/protocol.ts";

export interface OutputLine {
  stream: OutputStream;
  text: string;
}

// CSI sequences (colours, cursor moves) and OSC sequences (titles, links).
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

/** Keeps what a terminal would show for a line drawn over with carriage returns. */
function visible(text: string): string {
  const clean = text.replace(ANSI, "");
  const cr = clean.lastIndexOf("\r");
  return cr === -1 ? clean : clean.slice(cr + 1);
}

/** Incremental: append chunks in sequence order; `lines` stays valid between calls. */
export class OutputLines {
  readonly lines: OutputLine[] = [];
  /** The stream whose last line has no newline yet (the next chunk of it continues that line). */
  private open: { stream: OutputStream; index: number; raw: string } | null = null;
  private lastSeq = -1;

  /** Highest sequence number taken in. */
  get seq(): number {
    return this.lastSeq;
  }

  append(chunks: readonly StoredOutputChunk[]): void {
    for (const chunk of chunks) {
      if (chunk.seq <= this.lastSeq) continue;
      this.lastSeq = chunk.seq;
      this.appendText(chunk.stream, chunk.data.replace(/\r\n/g, "\n"));
    }
  }

  private appendText(stream: OutputStream, data: string): void {
    const pieces = data.split("\n");
    pieces.forEach((piece, i) => {
      const last = i === pieces.length - 1;
      if (last && piece === "") {
        // The chunk ended with a newline: the line is closed.
        this.open = null;
        return;
      }
      if (i === 0 && this.open !== null && this.open.stream === stream) {
        this.open.raw += piece;
        const line = this.lines[this.open.index];
        if (line) line.text = visible(this.open.raw);
      } else {
        this.lines.push({ stream, text: visible(piece) });
        this.open = { stream, index: this.lines.length - 1, raw: piece };
      }
      if (!last) this.open = null;
    });
  }
}

export function outputLines(chunks: readonly StoredOutputChunk[]): OutputLine[] {
  const out = new OutputLines();
  out.append([...chunks].sort((a, b) => a.seq - b.seq));
  return out.lines;
}

/**
 * How a line is shown. stderr is where git and nix write their progress
 * ("From …", "Preparing worktree", "building '/nix/store/…'"), so it is not
 * an error by itself: `error` is kept for the lines that say what went wrong.
 */
export type LineKind = "stdout" | "stderr" | "error" | "system";

/**
 * How many stderr lines at the end of a failed command's last step count as
 * its failure. nix's builder failure is its `error:` line, "last 10 log
 * lines", those ten and "For full logs…" (13 lines); git's fatal errors are one
 * to three. 20 holds the larger with room for a tool's hints, and is about what
 * the agent keeps of stderr for the command's error (its last 2000 characters).
 */
export const FAILURE_TAIL_LINES = 20;

/**
 * The tools' own error prefixes at the start of a line: git's `fatal:` and
 * `error:`, nix's `error:` (its colour is gone by now). Not `warning: error:`
 * (nix retrying a cache) nor git's `hint:`.
 */
const TOOL_ERROR = /^(?:error|fatal):/;

/**
 * Each line's kind, given the command's state (pure; the output element calls
 * it on every render, so a command that turns failed marks its tail then).
 * A line starting with a tool's error prefix is an error on either stream
 * (a detached switch's log merges both into stdout). When the command failed,
 * the last FAILURE_TAIL_LINES stderr lines of its last step are errors too:
 * the step is what follows the agent's last `$ command` line before the end,
 * so a successful fetch's "From …" is not blamed for the checkout after it.
 */
export function classifyLines(lines: readonly OutputLine[], state: CommandState): LineKind[] {
  const kinds = lines.map((line): LineKind => (line.stream !== "system" && TOOL_ERROR.test(line.text) ? "error" : line.stream));
  if (state !== "failed") return kinds;
  let i = lines.length - 1;
  // The agent's own closing words come after the failing step's output.
  while (i >= 0 && lines[i]?.stream === "system") i--;
  for (let taken = 0; i >= 0 && taken < FAILURE_TAIL_LINES; i--) {
    const stream = lines[i]?.stream;
    if (stream === "system") break;
    if (stream === "stderr") {
      kinds[i] = "error";
      taken++;
    }
  }
  return kinds;
}
