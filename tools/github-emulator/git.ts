import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";

/** The all-zero object id GitHub and git use for "no commit" (a created or deleted ref). */
export const ZERO_SHA = "0000000000000000000000000000000000000000";
/** git's well-known empty tree: always readable, never written. */
export const EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

export interface GitIdentity {
  name: string;
  email: string;
}

export interface GitSignature extends GitIdentity {
  /** ISO 8601, UTC. */
  date: string;
}

export interface CommitData {
  sha: string;
  tree: string;
  parents: string[];
  author: GitSignature;
  committer: GitSignature;
  message: string;
}

export interface TreeEntry {
  mode: string;
  type: "blob" | "tree" | "commit";
  sha: string;
  /** Bytes, for blobs only. */
  size: number | null;
  path: string;
}

export type FileChangeStatus = "added" | "removed" | "modified";

export interface FileChange {
  path: string;
  status: FileChangeStatus;
  /** Blob sha on the new side (the old one for removals). */
  sha: string;
  additions: number;
  deletions: number;
  binary: boolean;
}

/** One line of `git update-index --index-info`: a path set to a blob/tree entry, or removed (`sha: null`). */
export interface IndexUpdate {
  path: string;
  mode?: string;
  sha: string | null;
}

export class GitCommandError extends Error {
  readonly args: readonly string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(args: readonly string[], exitCode: number | null, stderr: string) {
    super(`git ${args.join(" ")} failed (${exitCode ?? "signal"}): ${stderr.trim()}`);
    this.name = "GitCommandError";
    this.args = args;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

interface RunOptions {
  input?: string | Buffer;
  env?: Record<string, string>;
  cwd?: string;
  /** Exit codes that are answers rather than failures (e.g. 1 for `merge-base --is-ancestor`). */
  okExitCodes?: number[];
  /** Run against a work tree (cwd) instead of the bare repository. */
  worktree?: boolean;
}

interface RunResult {
  stdout: Buffer;
  stderr: string;
  exitCode: number;
}

const SHA_RE = /^[0-9a-f]{4,40}$/i;
const FULL_SHA_RE = /^[0-9a-f]{40}$/i;

/** A name git would accept as a branch (conservative subset of `git check-ref-format`). */
export function isValidBranchName(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false;
  if (name.startsWith("-") || name.startsWith("/") || name.endsWith("/") || name.endsWith(".")) return false;
  if (name.endsWith(".lock") || name.includes("..") || name.includes("//") || name.includes("@{")) return false;
  if (name === "@" || name.split("/").some((part) => part.startsWith("."))) return false;
  // eslint-disable-next-line no-control-regex
  return !/[\x00-\x20\x7f~^:?*[\\]/.test(name);
}

export function isFullSha(value: string): boolean {
  return FULL_SHA_RE.test(value);
}

function isoFromGitDate(seconds: string): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(/\.000Z$/, "Z");
}

function parseSignature(line: string): GitSignature {
  const m = /^(.*) <([^>]*)> (\d+) ([+-]\d{4})$/.exec(line);
  if (!m) return { name: line, email: "", date: new Date(0).toISOString() };
  return { name: m[1] ?? "", email: m[2] ?? "", date: isoFromGitDate(m[3] ?? "0") };
}

/**
 * A bare repository driven through the git CLI (execFile, never a shell).
 * Every command gets a fixed environment: no user or system config, a fixed identity and the
 * emulator's clock, so commits are reproducible and nothing on the machine leaks in.
 */
export class GitRepo {
  readonly gitDir: string;
  readonly #scratchDir: string;
  readonly #identity: GitIdentity;
  readonly #clock: () => Date;
  /** Answers about objects named by full sha, by command line: they never change (see #runOnce). */
  readonly #settled = new Map<string, Promise<RunResult>>();

  constructor(options: { gitDir: string; scratchDir: string; identity: GitIdentity; clock: () => Date }) {
    this.gitDir = options.gitDir;
    this.#scratchDir = options.scratchDir;
    this.#identity = options.identity;
    this.#clock = options.clock;
  }

  /** The environment every git command runs with; `overrides` set author/committer per call. */
  env(overrides: { author?: GitIdentity; committer?: GitIdentity } = {}): Record<string, string> {
    const author = overrides.author ?? this.#identity;
    const committer = overrides.committer ?? author;
    const date = `${Math.floor(this.#clock().getTime() / 1000)} +0000`;
    return {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: this.#scratchDir,
      LC_ALL: "C",
      TZ: "UTC",
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_TERMINAL_PROMPT: "0",
      GIT_AUTHOR_NAME: author.name,
      GIT_AUTHOR_EMAIL: author.email,
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_NAME: committer.name,
      GIT_COMMITTER_EMAIL: committer.email,
      GIT_COMMITTER_DATE: date,
    };
  }

  run(args: string[], options: RunOptions = {}): Promise<RunResult> {
    const fullArgs = options.worktree ? args : ["--git-dir", this.gitDir, ...args];
    return new Promise((resolve, reject) => {
      const child = execFile(
        "git",
        fullArgs,
        {
          cwd: options.cwd ?? this.#scratchDir,
          env: { ...this.env(), ...options.env },
          encoding: "buffer",
          maxBuffer: 256 * 1024 * 1024,
        },
        (error, stdout, stderr) => {
          const exitCode = error ? (typeof error.code === "number" ? error.code : null) : 0;
          const stderrText = stderr.toString("utf8");
          if (exitCode === 0 || (exitCode !== null && options.okExitCodes?.includes(exitCode))) {
            resolve({ stdout, stderr: stderrText, exitCode });
          } else {
            reject(new GitCommandError(fullArgs, exitCode, stderrText || (error?.message ?? "")));
          }
        },
      );
      // A command that does not read stdin may exit first: its exit status is the answer, not EPIPE.
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(options.input);
    });
  }

  /**
   * `run` for a command whose every revision is a full sha: objects never change, so its answer is kept
   * and the command runs once. A git start costs ~0.1 s on a loaded machine, and one update-PR refresh
   * asks the same questions dozens of times. Only an answer `settled` accepts is kept (by default exit 0:
   * a missing object may still arrive by a push). Callers must not change the Buffer they get.
   */
  #runOnce(revisions: Array<string | null>, args: string[], settled: (exitCode: number | null) => boolean = (code) => code === 0, options: RunOptions = {}): Promise<RunResult> {
    if (!revisions.every((rev) => rev === null || isFullSha(rev))) return this.run(args, options);
    const key = args.join("\0");
    const known = this.#settled.get(key);
    if (known !== undefined) return known;
    const answer = this.run(args, options);
    this.#settled.set(key, answer);
    answer.then(
      (result) => {
        if (!settled(result.exitCode)) this.#settled.delete(key);
      },
      () => this.#settled.delete(key),
    );
    return answer;
  }

  async text(args: string[], options: RunOptions = {}): Promise<string> {
    const { stdout } = await this.run(args, options);
    return stdout.toString("utf8").trim();
  }

  /** `git init --bare` with the default branch, plus the server-side settings GitHub has. */
  async init(defaultBranch: string): Promise<void> {
    await mkdir(this.#scratchDir, { recursive: true });
    await mkdir(this.gitDir, { recursive: true });
    await this.run(["init", "--quiet", "--bare", `--initial-branch=${defaultBranch}`, this.gitDir], { worktree: true });
    // GitHub serves any reachable commit by sha (`git fetch origin <sha>`).
    await this.run(["config", "uploadpack.allowReachableSHA1InWant", "true"]);
    await this.run(["config", "uploadpack.allowTipSHA1InWant", "true"]);
  }

  // -- refs -----------------------------------------------------------------

  /** The commit a branch points at, or null. */
  async branchSha(branch: string): Promise<string | null> {
    if (!isValidBranchName(branch)) return null;
    return this.#verify(`refs/heads/${branch}^{commit}`);
  }

  async refSha(ref: string): Promise<string | null> {
    return this.#verify(ref);
  }

  /** Resolves what GitHub accepts as `{ref}`: a branch, a tag, or a (possibly abbreviated) sha. */
  async resolveCommit(ref: string): Promise<string | null> {
    if (ref.length === 0 || ref.startsWith("-")) return null;
    // As git reads a full sha: the object itself, before any ref of that name.
    if (isFullSha(ref)) {
      const sha = await this.#verify(`${ref}^{commit}`);
      if (sha) return sha;
    }
    const candidates: string[] = [];
    if (isValidBranchName(ref)) candidates.push(`refs/heads/${ref}`, `refs/tags/${ref}`);
    if (ref.startsWith("refs/") && isValidBranchName(ref)) candidates.unshift(ref);
    if (SHA_RE.test(ref) && !isFullSha(ref)) candidates.push(ref);
    for (const candidate of candidates) {
      const sha = await this.#verify(`${candidate}^{commit}`);
      if (sha) return sha;
    }
    return null;
  }

  async #verify(rev: string): Promise<string | null> {
    const object = /^([0-9a-f]{40})\^\{(?:commit|tree)\}$/i.exec(rev)?.[1] ?? "not a full sha";
    const { stdout, exitCode } = await this.#runOnce([object], ["rev-parse", "--verify", "--quiet", "--end-of-options", rev], undefined, {
      okExitCodes: [1, 128],
    });
    if (exitCode !== 0) return null;
    const sha = stdout.toString("utf8").trim();
    return isFullSha(sha) ? sha.toLowerCase() : null;
  }

  /** Branch name → sha for every branch. */
  async branches(): Promise<Map<string, string>> {
    const out = await this.text(["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/"]);
    const result = new Map<string, string>();
    for (const line of out.split("\n")) {
      if (!line) continue;
      const space = line.indexOf(" ");
      result.set(line.slice(space + 1).replace(/^refs\/heads\//, ""), line.slice(0, space));
    }
    return result;
  }

  /**
   * Compare-and-swap a ref: `expected` is the value it must have now (ZERO_SHA: must not exist).
   * Returns false when someone else moved it first.
   */
  async updateRef(ref: string, sha: string, expected: string): Promise<boolean> {
    const { exitCode } = await this.run(["update-ref", "-m", "github-emulator", ref, sha, expected], {
      okExitCodes: [1, 128],
    });
    return exitCode === 0;
  }

  async deleteRef(ref: string, expected: string): Promise<boolean> {
    const { exitCode } = await this.run(["update-ref", "-d", ref, expected], { okExitCodes: [1, 128] });
    return exitCode === 0;
  }

  // -- objects --------------------------------------------------------------

  async objectType(sha: string): Promise<string | null> {
    if (!SHA_RE.test(sha)) return null;
    const { stdout, exitCode } = await this.#runOnce([sha], ["cat-file", "-t", sha], undefined, { okExitCodes: [1, 128] });
    return exitCode === 0 ? stdout.toString("utf8").trim() : null;
  }

  async readCommit(sha: string): Promise<CommitData | null> {
    if (!SHA_RE.test(sha)) return null;
    const full = await this.#verify(`${sha}^{commit}`);
    if (!full) return null;
    const raw = (await this.#runOnce([full], ["cat-file", "commit", full])).stdout.toString("utf8");
    const split = raw.indexOf("\n\n");
    const header = split === -1 ? raw : raw.slice(0, split);
    const message = split === -1 ? "" : raw.slice(split + 2);
    const commit: CommitData = {
      sha: full,
      tree: EMPTY_TREE,
      parents: [],
      author: parseSignature(""),
      committer: parseSignature(""),
      message: message.replace(/\n$/, ""),
    };
    for (const line of header.split("\n")) {
      if (line.startsWith(" ")) continue; // continuation of a multi-line header (gpgsig)
      const space = line.indexOf(" ");
      const key = line.slice(0, space);
      const value = line.slice(space + 1);
      if (key === "tree") commit.tree = value;
      else if (key === "parent") commit.parents.push(value);
      else if (key === "author") commit.author = parseSignature(value);
      else if (key === "committer") commit.committer = parseSignature(value);
    }
    return commit;
  }

  async readBlob(sha: string): Promise<Buffer | null> {
    if ((await this.objectType(sha)) !== "blob") return null;
    return Buffer.from((await this.#runOnce([sha], ["cat-file", "blob", sha])).stdout);
  }

  async writeBlob(content: Buffer | string): Promise<string> {
    return this.text(["hash-object", "-w", "--stdin"], { input: content });
  }

  /** Entries of a tree (`treeish` may be a commit); recursive lists sub-trees too, like GitHub. */
  async readTree(treeish: string, options: { recursive?: boolean; path?: string } = {}): Promise<TreeEntry[] | null> {
    const args = ["ls-tree", "-z", "-l", "--full-tree"];
    if (options.recursive) args.push("-r", "-t");
    args.push(treeish);
    if (options.path !== undefined) args.push("--", options.path);
    const { stdout, exitCode } = await this.#runOnce([treeish], args, undefined, { okExitCodes: [128] });
    if (exitCode !== 0) return null;
    return stdout
      .toString("utf8")
      .split("\0")
      .filter((record) => record.length > 0)
      .map((record) => {
        const tab = record.indexOf("\t");
        const [mode = "", type = "blob", sha = "", size = "-"] = record.slice(0, tab).split(/\s+/);
        return {
          mode,
          type: type === "tree" ? "tree" : type === "commit" ? "commit" : "blob",
          sha,
          size: size === "-" ? null : Number(size),
          path: record.slice(tab + 1),
        } satisfies TreeEntry;
      });
  }

  /** The tree of a commit-ish or a tree sha, or null. */
  async treeOf(treeish: string): Promise<string | null> {
    if (treeish.startsWith("-")) return null;
    return this.#verify(`${treeish}^{tree}`);
  }

  /**
   * Builds a tree from `base` (null: empty) with `updates` applied, through a temporary index,
   * so the bare repository never needs a work tree.
   */
  async writeTree(base: string | null, updates: IndexUpdate[]): Promise<string> {
    const dir = await mkdtemp(join(this.#scratchDir, "index-"));
    const env = { GIT_INDEX_FILE: join(dir, "index") };
    try {
      await this.run(base ? ["read-tree", base] : ["read-tree", "--empty"], { env });
      const removals = updates.filter((u) => u.sha === null).map((u) => u.path);
      if (removals.length > 0) {
        // A path may name a directory: drop everything under it too.
        const listed = (await this.run(["ls-files", "-z"], { env })).stdout.toString("utf8").split("\0");
        const doomed = listed.filter((p) => removals.some((r) => p === r || p.startsWith(`${r}/`)));
        await this.#removeFromIndex(doomed, env);
      }
      for (const update of updates) {
        if (update.sha === null) continue;
        if (update.mode === "040000") {
          // A whole sub-tree: replace what is there with the given tree's contents.
          const listed = (await this.run(["ls-files", "-z"], { env })).stdout.toString("utf8").split("\0");
          const under = listed.filter((p) => p === update.path || p.startsWith(`${update.path}/`));
          await this.#removeFromIndex(under, env);
          await this.run(["read-tree", `--prefix=${update.path}/`, update.sha], { env });
        } else {
          const line = `${update.mode ?? "100644"} ${update.sha}\t${update.path}\0`;
          await this.run(["update-index", "-z", "--add", "--replace", "--index-info"], { env, input: line });
        }
      }
      return await this.text(["write-tree"], { env });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** `--index-info` with mode 0 drops a path; `--force-remove` would need a work tree. */
  async #removeFromIndex(paths: string[], env: Record<string, string>): Promise<void> {
    if (paths.length === 0) return;
    const input = paths.map((p) => `0 ${ZERO_SHA}\t${p}\0`).join("");
    await this.run(["update-index", "-z", "--index-info"], { env, input });
  }

  async commitTree(options: {
    tree: string;
    parents: string[];
    message: string;
    author?: GitIdentity;
    committer?: GitIdentity;
    authorDate?: string;
  }): Promise<string> {
    const args = ["commit-tree", options.tree];
    for (const parent of options.parents) args.push("-p", parent);
    args.push("-F", "-");
    const env = this.env({ author: options.author, committer: options.committer ?? options.author });
    if (options.authorDate) env.GIT_AUTHOR_DATE = options.authorDate;
    return this.text(args, { env, input: options.message.endsWith("\n") ? options.message : `${options.message}\n` });
  }

  // -- history --------------------------------------------------------------

  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    const answered = (code: number | null) => code === 0 || code === 1;
    const { exitCode } = await this.#runOnce([ancestor, descendant], ["merge-base", "--is-ancestor", ancestor, descendant], answered, { okExitCodes: [1] });
    return exitCode === 0;
  }

  async mergeBase(a: string, b: string): Promise<string | null> {
    const { stdout, exitCode } = await this.#runOnce([a, b], ["merge-base", a, b], (code) => code === 0 || code === 1, { okExitCodes: [1] });
    return exitCode === 0 ? stdout.toString("utf8").trim() : null;
  }

  /** Commits reachable from `include` but from none of `exclude`, oldest first. */
  async commitsBetween(include: string, exclude: string[], limit = 250): Promise<string[]> {
    const args = ["rev-list", "--reverse", "--topo-order", include, ...exclude.map((e) => `^${e}`)];
    const out = (await this.#runOnce([include, ...exclude], args)).stdout.toString("utf8").trim();
    const shas = out ? out.split("\n") : [];
    return shas.slice(Math.max(0, shas.length - limit));
  }

  async countCommits(include: string, exclude: string[]): Promise<number> {
    const args = ["rev-list", "--count", include, ...exclude.map((e) => `^${e}`)];
    return Number((await this.#runOnce([include, ...exclude], args)).stdout.toString("utf8").trim());
  }

  /**
   * A three-way merge computed without a work tree (`git merge-tree --write-tree`):
   * the resulting tree when clean, the conflicting paths otherwise.
   */
  async mergeTree(ours: string, theirs: string): Promise<{ clean: true; tree: string } | { clean: false; conflicts: string[] }> {
    const { stdout, exitCode } = await this.#runOnce(
      [ours, theirs],
      ["merge-tree", "--write-tree", "--name-only", "--no-messages", ours, theirs],
      (code) => code === 0 || code === 1,
      { okExitCodes: [1, 128] },
    );
    const lines = stdout.toString("utf8").split("\n").filter((l) => l.length > 0);
    if (exitCode === 0 && lines[0] && isFullSha(lines[0])) return { clean: true, tree: lines[0] };
    return { clean: false, conflicts: lines.slice(1) };
  }

  /** Files changed from `from` (a commit or tree; null: nothing) to `to`, with line counts. */
  async diffFiles(from: string | null, to: string): Promise<FileChange[]> {
    const base = from ?? EMPTY_TREE;
    const nameStatus = (await this.#runOnce([base, to], ["diff-tree", "-r", "-z", "--no-renames", "--raw", "--no-abbrev", base, to])).stdout
      .toString("utf8")
      .split("\0");
    const numstat = (await this.#runOnce([base, to], ["diff-tree", "-r", "-z", "--no-renames", "--numstat", base, to])).stdout
      .toString("utf8")
      .split("\0");
    const counts = new Map<string, { additions: number; deletions: number; binary: boolean }>();
    for (const record of numstat) {
      const m = /^(\d+|-)\t(\d+|-)\t(.*)$/s.exec(record);
      if (!m) continue;
      const binary = m[1] === "-";
      counts.set(m[3] ?? "", { additions: binary ? 0 : Number(m[1]), deletions: binary ? 0 : Number(m[2]), binary });
    }
    const changes: FileChange[] = [];
    // --raw -z: ":oldmode newmode oldsha newsha STATUS\0path\0"
    for (let i = 0; i < nameStatus.length - 1; i++) {
      const meta = nameStatus[i] ?? "";
      if (!meta.startsWith(":")) continue;
      const path = nameStatus[i + 1] ?? "";
      i++;
      const [, , oldSha = ZERO_SHA, newSha = ZERO_SHA, letter = "M"] = meta.slice(1).split(" ");
      const status: FileChangeStatus = letter === "A" ? "added" : letter === "D" ? "removed" : "modified";
      const count = counts.get(path) ?? { additions: 0, deletions: 0, binary: false };
      changes.push({ path, status, sha: status === "removed" ? oldSha : newSha, ...count });
    }
    return changes;
  }

  /** The unified diff hunks of one file, as GitHub's `patch` field shows them (no headers). */
  async filePatch(from: string | null, to: string, path: string): Promise<string | undefined> {
    const out = (
      await this.#runOnce([from ?? EMPTY_TREE, to], ["diff-tree", "-p", "--no-color", "--no-ext-diff", "--no-renames", "-r", from ?? EMPTY_TREE, to, "--", path])
    ).stdout.toString("utf8");
    const start = out.indexOf("\n@@");
    if (start === -1) return undefined; // binary or empty
    return out.slice(start + 1).replace(/\n$/, "");
  }

  // -- work trees (only the rebase merge needs one) --------------------------

  /** Runs `fn` in a temporary detached work tree at `sha`, always removed afterwards. */
  async withWorktree<T>(sha: string, fn: (dir: string) => Promise<T>): Promise<T> {
    const parent = await mkdtemp(join(this.#scratchDir, "worktree-"));
    const dir = join(parent, "wt");
    await this.run(["worktree", "add", "--quiet", "--detach", dir, sha]);
    try {
      return await fn(dir);
    } finally {
      await this.run(["worktree", "remove", "--force", dir], { okExitCodes: [128] });
      await this.run(["worktree", "prune"]);
      await rm(parent, { recursive: true, force: true });
    }
  }
}
