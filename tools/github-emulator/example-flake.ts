/**
 * A small fleet flake for demos, and the flake.lock update PR a scheduled
 * `nix flake update` workflow would open against it.
 */
import { createHash } from "node:crypto";
import { z } from "zod";

const LockedGithub = z.looseObject({
  type: z.literal("github"),
  owner: z.string(),
  repo: z.string(),
  rev: z.string(),
  narHash: z.string(),
  lastModified: z.number().int(),
});

const LockNode = z.looseObject({
  inputs: z.record(z.string(), z.union([z.string(), z.array(z.string())])).optional(),
  locked: z.looseObject({}).optional(),
  original: z.looseObject({}).optional(),
});

const FlakeLock = z.looseObject({
  nodes: z.record(z.string(), LockNode),
  root: z.string(),
  version: z.number().int(),
});

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function rev(seed: string): string {
  return createHash("sha1").update(seed).digest("hex");
}

function narHash(seed: string): string {
  return `sha256-${digest(`nar:${seed}`).toString("base64")}`;
}

function githubNode(owner: string, repo: string, ref: string | undefined, lastModified: number, seed: string, follows?: Record<string, string[]>): Record<string, unknown> {
  const node: Record<string, unknown> = {
    locked: { lastModified, narHash: narHash(seed), owner, repo, rev: rev(seed), type: "github" },
    original: ref ? { owner, ref, repo, type: "github" } : { owner, repo, type: "github" },
  };
  if (follows) return { inputs: follows, ...node };
  return node;
}

/** flake.nix, flake.lock and two host configurations, locked as of `now`. */
export function exampleFlakeFiles(now: Date): Record<string, string> {
  const day = 86_400;
  const t = Math.floor(now.getTime() / 1000);
  const lock = {
    nodes: {
      "home-manager": githubNode("nix-community", "home-manager", undefined, t - 9 * day, "home-manager@0", { nixpkgs: ["nixpkgs"] }),
      nixpkgs: githubNode("NixOS", "nixpkgs", "nixos-unstable", t - 12 * day, "nixpkgs@0"),
      root: { inputs: { "home-manager": "home-manager", nixpkgs: "nixpkgs" } },
    },
    root: "root",
    version: 7,
  };
  return {
    "flake.nix": `{
  description = "Example fleet";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    home-manager = {
      url = "github:nix-community/home-manager";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs = { self, nixpkgs, home-manager, ... }: {
    nixosConfigurations = {
      web1 = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [ ./hosts/web1.nix ];
      };
      desk1 = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [ ./hosts/desk1.nix home-manager.nixosModules.home-manager ];
      };
    };
  };
}
`,
    "flake.lock": `${JSON.stringify(lock, null, 2)}\n`,
    "hosts/web1.nix": `{ ... }:
{
  networking.hostName = "web1";
  services.nginx.enable = true;
  system.stateVersion = "24.11";
}
`,
    "hosts/desk1.nix": `{ ... }:
{
  networking.hostName = "desk1";
  home-manager.useGlobalPkgs = true;
  system.stateVersion = "24.11";
}
`,
  };
}

export interface LockInputChange {
  input: string;
  url: string;
  oldRev: string;
  newRev: string;
  oldDate: string;
  newDate: string;
}

/**
 * Moves every github input of a flake.lock (or only `inputs`) to a newer pseudo-revision,
 * returning the new lock text and what `nix flake update` would print about it.
 */
export function updateFlakeLock(lockText: string, now: Date, inputs?: string[]): { lock: string; changes: LockInputChange[] } {
  const lock = FlakeLock.parse(JSON.parse(lockText));
  const rootInputs = lock.nodes[lock.root]?.inputs ?? {};
  const changes: LockInputChange[] = [];
  const t = Math.floor(now.getTime() / 1000);
  for (const [input, target] of Object.entries(rootInputs)) {
    if (typeof target !== "string" || (inputs && !inputs.includes(input))) continue;
    const node = lock.nodes[target];
    const locked = LockedGithub.safeParse(node?.locked);
    if (!node || !locked.success) continue;
    const seed = `${input}@${locked.data.rev}@${t}`;
    const next = { ...locked.data, rev: rev(seed), narHash: narHash(seed), lastModified: t - 3600 };
    // nix writes attribute names in byte order; keep the diff to the changed values.
    node.locked = Object.fromEntries(Object.entries(next).sort(([a], [b]) => (a < b ? -1 : 1)));
    const date = (seconds: number): string => new Date(seconds * 1000).toISOString().slice(0, 10);
    changes.push({
      input,
      url: `github:${locked.data.owner}/${locked.data.repo}`,
      oldRev: locked.data.rev,
      newRev: next.rev,
      oldDate: date(locked.data.lastModified),
      newDate: date(next.lastModified),
    });
  }
  return { lock: `${JSON.stringify(lock, null, 2)}\n`, changes };
}

/** The "Flake lock file updates:" block `nix flake update --commit-lock-file` writes. */
export function lockUpdateSummary(changes: LockInputChange[]): string {
  const lines = ["Flake lock file updates:", ""];
  for (const change of changes) {
    lines.push(
      `• Updated input '${change.input}':`,
      `    '${change.url}/${change.oldRev}' (${change.oldDate})`,
      `  → '${change.url}/${change.newRev}' (${change.newDate})`,
    );
  }
  return lines.join("\n");
}

/** Title, body and commit message of the update PR a scheduled workflow opens. */
export function updatePullRequestText(changes: LockInputChange[]): { title: string; body: string; message: string } {
  const summary = lockUpdateSummary(changes);
  return {
    title: "flake.lock: Update",
    body: `Automated changes by the scheduled flake update workflow.\n\n\`\`\`\n${summary}\n\`\`\`\n`,
    message: `flake.lock: Update\n\n${summary}`,
  };
}
