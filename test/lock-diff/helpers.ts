import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseFlakeLock, type FlakeLock } from "../../common/lock-diff.ts";

export const fixturePath = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

export const readFixture = (name: string): string => readFileSync(fixturePath(name), "utf8");

export const fixtureLock = (name: string): FlakeLock => parseFlakeLock(readFixture(name));

/** A small flake.lock's text, for edge cases the realistic fixtures do not have. */
export function lockText(nodes: Record<string, unknown>, version = 7): string {
  return JSON.stringify({ nodes, root: "root", version }, null, 2) + "\n";
}

/** A github node as Nix locks it. */
export function githubNode(
  owner: string,
  repo: string,
  rev: string,
  extra: { inputs?: Record<string, string | string[]>; lastModified?: number; narHash?: string; host?: string } = {},
): Record<string, unknown> {
  return {
    ...(extra.inputs ? { inputs: extra.inputs } : {}),
    locked: {
      ...(extra.host ? { host: extra.host } : {}),
      lastModified: extra.lastModified ?? 1765000000,
      narHash: extra.narHash ?? `sha256-${rev.slice(0, 43)}=`,
      owner,
      repo,
      rev,
      type: "github",
    },
    original: { owner, repo, type: "github" },
  };
}

/** A 40-hex rev made from a short label, so tests read like `rev("a")`. */
export const rev = (label: string): string => label.repeat(40).slice(0, 40);
