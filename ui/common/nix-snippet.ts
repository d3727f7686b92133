/** The Nix a person pastes into a new host's configuration to run the agent. */
import type { Platform } from "../../common/protocol.ts";

export interface SnippetOptions {
  /** The dashboard's origin, e.g. `https://fleet.example.com`. */
  origin: string;
  platform: Platform;
  hostName: string;
  /** Only written when it differs from the host name (the module defaults to it). */
  flakeAttr?: string | null;
  /** `owner/repo` of the configuration repository, when the control plane knows it. */
  repository?: string | null;
}

const WHERE: Record<Platform, string> = {
  nixos: "In this host's NixOS configuration (with the nixfleet NixOS module imported):",
  darwin: "In this Mac's nix-darwin configuration (with the nixfleet nix-darwin module imported):",
  "home-manager": "In this user's Home Manager configuration (with the nixfleet Home Manager module imported):",
};

/** The token lives in a root-only file (a user-only file for Home Manager), never in the Nix store. */
const TOKEN_FILE: Record<Platform, string> = {
  nixos: "/etc/nixfleet/token",
  darwin: "/etc/nixfleet/token",
  "home-manager": "~/.config/nixfleet/token",
};

const nixString = (value: string): string => `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\$\{/g, "\\${")}"`;

export function agentSnippet(options: SnippetOptions): string {
  const repoUrl = options.repository ? `https://github.com/${options.repository}.git` : "https://github.com/<owner>/<repo>.git";
  const tokenFile = TOKEN_FILE[options.platform];
  const secretNote = options.platform === "home-manager" ? "user-only" : "root-only";
  const lines = [
    `# ${WHERE[options.platform]}`,
    "services.nixfleet-agent = {",
    "  enable = true;",
    `  url = ${nixString(options.origin)};`,
    `  tokenFile = ${nixString(tokenFile)}; # put the token in this file (${secretNote}, not in the Nix store)`,
    `  repoUrl = ${nixString(repoUrl)};`,
    `  hostName = ${nixString(options.hostName)};`,
  ];
  if (options.flakeAttr && options.flakeAttr !== options.hostName) lines.push(`  flakeAttr = ${nixString(options.flakeAttr)};`);
  lines.push("};");
  return `${lines.join("\n")}\n`;
}

/** The shell lines that put the token where the snippet expects it. */
export function tokenInstallCommand(platform: Platform, token: string): string {
  const file = TOKEN_FILE[platform];
  if (platform === "home-manager") {
    return `install -d -m 700 ~/.config/nixfleet && (umask 077; printf '%s' '${token}' > ${file})`;
  }
  return `sudo install -d -m 700 /etc/nixfleet && printf '%s' '${token}' | sudo tee ${file} >/dev/null && sudo chmod 600 ${file}`;
}
