/**
 * Turns a command's output chunks into lines for display. Chunks are
 * arbitrary slices of a stream (a line may span chunks), stdout and stderr
 * interleave, and tools draw progress with `\r` and colour with ANSI codes.
 */
import type { OutputStream, StoredOutputChunk } from "../../common/protocol.ts";

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
