// Kept apart from config.ts so the client needs no Worker environment types (it also runs on Node).

/** The repository the fleet follows: `owner/name`. */
export interface RepositoryName {
  owner: string;
  name: string;
  fullName: string;
}

export type GitHubAuthConfig =
  | { kind: "token"; token: string }
  /** `installationId` null: the client asks GitHub for the App's installation on the repository. */
  | { kind: "app"; appId: string; privateKey: string; installationId: string | null };
