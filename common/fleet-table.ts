/**
 * What the fleet table shows in its first frame, for the components and for the table the Worker writes into
 * the page (worker/fleet-page.ts) alike.
 */
import type { Platform } from "./protocol.ts";

/**
 * Rows in the fleet table's first frame. A larger fleet's other rows follow,
 * MORE_ROWS a task after each frame, so the first screen does not wait for
 * a thousand rows to be built (bench/ui.ts); the page stays answerable while
 * they come, and then holds every row (find in page, select all).
 */
export const FIRST_ROWS = 100;
/**
 * Rows the page GET / writes (worker/fleet-page.ts): those that fit a 1080-pixel-tall window below the blocks above
 * the table. The rest of the first FIRST_ROWS have their height reserved there and come with the components, a
 * frame later; parsing, styling and painting rows below the screen held back the first frame (bench:ui --decompose).
 */
export const WRITTEN_ROWS = 16;
export const MORE_ROWS = 300;

export const PLATFORM_NAMES: Record<Platform, string> = { nixos: "NixOS", darwin: "macOS", "home-manager": "Home Manager" };
