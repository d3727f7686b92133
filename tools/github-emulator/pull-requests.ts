import { stableNumber } from "./ids.ts";

/** A pull request as the emulator keeps it; JSON shapes are made in payloads.ts. */
export interface PullRequest {
  number: number;
  id: number;
  title: string;
  body: string | null;
  state: "open" | "closed";
  draft: boolean;
  /** Head and base branch names. */
  head: string;
  base: string;
  /** Last known tips: kept current while open, frozen when closed. */
  headSha: string;
  baseSha: string;
  labels: string[];
  user: string;
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
  mergedAt: string | null;
  mergeCommitSha: string | null;
  mergedBy: string | null;
}

/** Repository labels: GitHub creates a label the first time an issue is given it. */
export interface Label {
  id: number;
  name: string;
  color: string;
  description: string | null;
  default: boolean;
}

const DEFAULT_LABELS: Array<[string, string, string]> = [
  ["bug", "d73a4a", "Something isn't working"],
  ["documentation", "0075ca", "Improvements or additions to documentation"],
  ["enhancement", "a2eeef", "New feature or request"],
  ["dependencies", "0366d6", "Pull requests that update a dependency file"],
];

/** Issue numbers, pull requests and labels of one repository (issues and PRs share numbers). */
export class PullRequestStore {
  readonly #pulls = new Map<number, PullRequest>();
  readonly #labels = new Map<string, Label>();
  readonly #repoId: number;
  #nextNumber = 1;

  constructor(repoId: number) {
    this.#repoId = repoId;
    for (const [name, color, description] of DEFAULT_LABELS) this.label(name, { color, description, isDefault: true });
  }

  create(fields: Omit<PullRequest, "number" | "id">): PullRequest {
    const number = this.#nextNumber++;
    const pr: PullRequest = { ...fields, number, id: this.#repoId * 10 + 1_000_000_000 + number * 7919 };
    this.#pulls.set(number, pr);
    return pr;
  }

  get(number: number): PullRequest | undefined {
    return this.#pulls.get(number);
  }

  /** Newest first, like GitHub's default sort. */
  list(): PullRequest[] {
    return [...this.#pulls.values()].sort((a, b) => b.number - a.number);
  }

  openWithHead(branch: string): PullRequest[] {
    return this.list().filter((pr) => pr.state === "open" && pr.head === branch);
  }

  /** The label with this name (case-insensitive, as on GitHub), created on first use. */
  label(name: string, options: { color?: string; description?: string | null; isDefault?: boolean } = {}): Label {
    const key = name.toLowerCase();
    const existing = this.#labels.get(key);
    if (existing) return existing;
    const created: Label = {
      id: 1_000_000_000 + stableNumber(`${this.#repoId}/${key}`, 999_999_999),
      name,
      color: options.color ?? stableNumber(key, 0xffffff).toString(16).padStart(6, "0"),
      description: options.description ?? null,
      default: options.isDefault ?? false,
    };
    this.#labels.set(key, created);
    return created;
  }

  labels(): Label[] {
    return [...this.#labels.values()];
  }
}
