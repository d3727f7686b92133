import { describe, expect, it } from "vitest";
import { AgentConfig } from "../../common/agent-config.ts";
import { agentSnippet, tokenInstallCommand } from "../../ui/common/nix-snippet.ts";

const base = { origin: "https://fleet.example.com", hostName: "hsb0", repository: "example/nixcfg" } as const;

describe("agentSnippet", () => {
  it("points a NixOS host at this dashboard, its token file and its repository", () => {
    const snippet = agentSnippet({ ...base, platform: "nixos" });
    expect(snippet).toContain("services.nixfleet-agent = {");
    expect(snippet).toContain("enable = true;");
    expect(snippet).toContain('url = "https://fleet.example.com";');
    expect(snippet).toContain('tokenFile = "/etc/nixfleet/token";');
    expect(snippet).toContain('repoUrl = "https://github.com/example/nixcfg.git";');
    expect(snippet).toContain('hostName = "hsb0";');
    expect(snippet).toMatch(/^# In this host's NixOS configuration/);
  });

  it("says where it goes for nix-darwin and Home Manager, with a user-owned token file for Home Manager", () => {
    expect(agentSnippet({ ...base, platform: "darwin" })).toMatch(/nix-darwin configuration/);
    const home = agentSnippet({ ...base, platform: "home-manager" });
    expect(home).toMatch(/Home Manager configuration/);
    expect(home).toContain('tokenFile = "~/.config/nixfleet/token";');
  });

  it("names the flake attribute only when it differs from the host name", () => {
    expect(agentSnippet({ ...base, platform: "nixos", flakeAttr: "hsb0" })).not.toContain("flakeAttr");
    expect(agentSnippet({ ...base, platform: "nixos", flakeAttr: "hsb0-server" })).toContain('flakeAttr = "hsb0-server";');
  });

  it("leaves a placeholder repository when the control plane does not know it", () => {
    expect(agentSnippet({ ...base, platform: "nixos", repository: null })).toContain('repoUrl = "https://github.com/<owner>/<repo>.git";');
  });

  it("uses only options the agent's config knows", () => {
    const snippet = agentSnippet({ ...base, platform: "nixos", flakeAttr: "other" });
    const options = [...snippet.matchAll(/^ {2}(\w+) = /gm)].map((match) => match[1]).filter((name) => name !== "enable");
    expect(options.length).toBeGreaterThan(3);
    for (const option of options) expect(Object.keys(AgentConfig.shape)).toContain(option);
  });

  it("escapes what Nix would interpolate", () => {
    expect(agentSnippet({ ...base, platform: "nixos", origin: 'https://x/${evil}"' })).toContain('url = "https://x/\\${evil}\\"";');
  });
});

describe("tokenInstallCommand", () => {
  it("writes the token to a root-only file on NixOS and a user-only file for Home Manager", () => {
    expect(tokenInstallCommand("nixos", "tok_abc")).toContain("sudo tee /etc/nixfleet/token");
    expect(tokenInstallCommand("nixos", "tok_abc")).toContain("chmod 600");
    expect(tokenInstallCommand("home-manager", "tok_abc")).toContain("umask 077");
    expect(tokenInstallCommand("home-manager", "tok_abc")).toContain("'tok_abc'");
  });
});
