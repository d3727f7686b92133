/**
 * Reads what `nix store diff-closures OLD NEW` prints into entries. Pure, so
 * it is tested against output captured from the real command.
 *
 * The format (nix/src/nix/diff-closures.cc, unchanged since Nix 2.4):
 *
 *     hello: 1.0 → 1.1, +28.0 KiB
 *     newpkg: ∅ → ε
 *     libfoo: -12.5 KiB
 *
 * one line per name whose versions changed or whose size moved by 8 KiB or
 * more. Versions on each side are joined with ", " (`∅`: none, `ε`: a path
 * without a version). The size is coloured with ANSI escapes even when stdout
 * is not a terminal (Nix 2.8); newer Nix drops them and may print MiB/GiB.
 */
import { CLOSURE_DIFF_MAX_ENTRIES, type ClosureDiffEntry } from "../common/protocol.ts";

const ANSI_ESCAPE = /\u001b\[[0-9;?]*[A-Za-z]/g;
const SIZE_AT_END = /(?:^|, )([+-]?\d+(?:\.\d+)?) (B|KiB|MiB|GiB|TiB)$/;
const UNIT_BYTES: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };
const ARROW = " → ";
const MAX_VERSIONS = 50;

export interface ParsedClosureDiff {
  entries: ClosureDiffEntry[];
  /** Entries beyond CLOSURE_DIFF_MAX_ENTRIES, left out. */
  omitted: number;
  /** Lines that are not in the format above (kept for the log, never guessed at). */
  unparsed: string[];
}

export function parseClosureDiff(text: string): ParsedClosureDiff {
  const entries: ClosureDiffEntry[] = [];
  const unparsed: string[] = [];
  let omitted = 0;
  for (const raw of text.replace(ANSI_ESCAPE, "").split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    const entry = parseLine(line);
    if (entry === null) unparsed.push(line);
    else if (entries.length < CLOSURE_DIFF_MAX_ENTRIES) entries.push(entry);
    else omitted++;
  }
  return { entries, omitted, unparsed };
}

function parseLine(line: string): ClosureDiffEntry | null {
  // Store path names cannot contain ":", so the first ": " ends the name.
  const colon = line.indexOf(": ");
  if (colon <= 0) return null;
  const name = line.slice(0, colon);
  let rest = line.slice(colon + 2);

  let sizeDelta = 0;
  const size = SIZE_AT_END.exec(rest);
  if (size !== null) {
    sizeDelta = Math.round(Number(size[1]) * (UNIT_BYTES[size[2] ?? "B"] ?? 1));
    rest = rest.slice(0, size.index);
  }

  let old: string[] = [];
  let added: string[] = [];
  if (rest !== "") {
    const arrow = rest.indexOf(ARROW);
    if (arrow < 0) return null;
    old = versions(rest.slice(0, arrow));
    added = versions(rest.slice(arrow + ARROW.length));
  } else if (size === null) {
    return null;
  }
  return { name: name.slice(0, 200), old, new: added, sizeDelta };
}

function versions(side: string): string[] {
  if (side === "∅") return [];
  return side
    .split(", ")
    .slice(0, MAX_VERSIONS)
    .map((version) => (version === "ε" ? "" : version.slice(0, 100)));
}
