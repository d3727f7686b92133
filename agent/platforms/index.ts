/** The one place that picks the platform from the agent's config. */
import type { AgentConfig } from "../../common/agent-config.ts";
import { darwinPlatform } from "./darwin.ts";
import { homeManagerPlatform } from "./home-manager.ts";
import { nixosPlatform } from "./nixos.ts";
import type { HostPlatform } from "./platform.ts";

export type { HostPlatform } from "./platform.ts";

const PLATFORMS: Record<AgentConfig["platform"], (config: AgentConfig) => HostPlatform> = {
  nixos: nixosPlatform,
  darwin: darwinPlatform,
  "home-manager": homeManagerPlatform,
};

export function platformFor(config: AgentConfig): HostPlatform {
  return PLATFORMS[config.platform](config);
}
