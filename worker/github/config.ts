import type { WorkerEnv } from "../env.ts";
import type { GitHubAuthConfig, RepositoryName } from "./types.ts";

export type { GitHubAuthConfig, RepositoryName } from "./types.ts";

export const DEFAULT_API_URL = "https://api.github.com";
export const DEFAULT_BRANCH = "main";
export const DEFAULT_UPDATE_PR_LABEL = "automated";
export const DEFAULT_UPDATE_PR_TITLE_PATTERN = "flake.lock";

/** How update PRs are recognised (see docs/github.md "Settings"): a label, or a title fragment (case-insensitive). */
export interface UpdatePrRule {
  label: string;
  titlePattern: string;
}

export interface GitHubConfig {
  repository: RepositoryName | null;
  branch: string;
  apiUrl: string;
  auth: GitHubAuthConfig | null;
  webhookSecret: string | null;
  updatePrRule: UpdatePrRule;
  /** What is missing or wrong, each a sentence that says what to set. */
  problems: string[];
}

const OWNER_NAME = /^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/;

const present = (value: string | undefined): string | null => {
  const trimmed = value?.trim();
  return trimmed ? trimmed : null;
};

export function parseRepositoryName(value: string): RepositoryName | null {
  const trimmed = value.trim();
  if (!OWNER_NAME.test(trimmed)) return null;
  const [owner, name] = trimmed.split("/") as [string, string];
  return { owner, name, fullName: `${owner}/${name}` };
}

/**
 * Reads the GitHub settings from the Worker's vars and secrets. Never throws:
 * whatever is missing is listed in `problems`, so the rest of the control
 * plane keeps working and the dashboard can say what to set.
 */
export function readGitHubConfig(env: WorkerEnv): GitHubConfig {
  const problems: string[] = [];

  const rawRepository = present(env.GITHUB_REPOSITORY);
  let repository: RepositoryName | null = null;
  if (rawRepository === null) {
    problems.push("GITHUB_REPOSITORY is not configured: set it to the fleet's repository as owner/name");
  } else {
    repository = parseRepositoryName(rawRepository);
    if (repository === null) problems.push(`GITHUB_REPOSITORY "${rawRepository}" is not of the form owner/name`);
  }

  const token = present(env.GITHUB_TOKEN);
  const appId = present(env.GITHUB_APP_ID);
  const privateKey = present(env.GITHUB_APP_PRIVATE_KEY);
  const installationId = present(env.GITHUB_APP_INSTALLATION_ID);
  let auth: GitHubAuthConfig | null = null;
  if (token !== null) {
    auth = { kind: "token", token };
  } else if (appId !== null || privateKey !== null || installationId !== null) {
    const missing = [
      appId === null ? "GITHUB_APP_ID" : null,
      privateKey === null ? "GITHUB_APP_PRIVATE_KEY" : null,
    ].filter((name) => name !== null);
    if (missing.length > 0) problems.push(`GitHub App credentials are incomplete: ${missing.join(", ")} not set`);
    else if (installationId !== null && !/^\d+$/.test(installationId)) problems.push("GITHUB_APP_INSTALLATION_ID must be a number");
    // Without an installation id the client finds the App's installation on the repository itself.
    else auth = { kind: "app", appId: appId!, privateKey: privateKey!, installationId };
  } else {
    problems.push(
      "no GitHub API credentials: set GITHUB_TOKEN (fine-grained token) or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (`npx nixfleet setup` registers the App)",
    );
  }

  const webhookSecret = present(env.GITHUB_WEBHOOK_SECRET);
  if (webhookSecret === null) problems.push("GITHUB_WEBHOOK_SECRET is not set: GitHub webhooks are refused until it is");

  const apiUrl = (present(env.GITHUB_API_URL) ?? DEFAULT_API_URL).replace(/\/+$/, "");
  return {
    repository,
    branch: present(env.GITHUB_BRANCH) ?? DEFAULT_BRANCH,
    apiUrl,
    auth,
    webhookSecret,
    updatePrRule: {
      label: present(env.UPDATE_PR_LABEL) ?? DEFAULT_UPDATE_PR_LABEL,
      titlePattern: present(env.UPDATE_PR_TITLE_PATTERN) ?? DEFAULT_UPDATE_PR_TITLE_PATTERN,
    },
    problems,
  };
}

/** Same repository? GitHub owner and repository names are case-insensitive. */
export const sameRepository = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
