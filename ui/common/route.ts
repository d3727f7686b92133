/** The dashboard's client-side routes; the worker serves index.html for every other path. */

export type Route =
  | { page: "fleet" }
  | { page: "host"; name: string; commandId: string | null }
  | { page: "audit" }
  | { page: "rollouts" }
  | { page: "settings" }
  | { page: "not-found"; path: string };

export function parseRoute(pathname: string, search = ""): Route {
  const path = pathname.replace(/\/+$/, "") || "/";
  if (path === "/") return { page: "fleet" };
  if (path === "/audit") return { page: "audit" };
  if (path === ROLLOUTS_PATH) return { page: "rollouts" };
  if (path === SETTINGS_PATH) return { page: "settings" };
  const host = /^\/hosts\/([^/]+)$/.exec(path);
  if (host?.[1]) {
    const commandId = new URLSearchParams(search).get("command");
    return { page: "host", name: decodeURIComponent(host[1]), commandId: commandId || null };
  }
  return { page: "not-found", path };
}

export function hostPath(name: string, commandId?: string | null): string {
  const base = `/hosts/${encodeURIComponent(name)}`;
  return commandId ? `${base}?command=${encodeURIComponent(commandId)}` : base;
}

export const FLEET_PATH = "/";
export const ROLLOUTS_PATH = "/rollouts";
export const SETTINGS_PATH = "/settings";

/** Client-side navigation: the app listens for popstate. */
export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (options.replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  window.dispatchEvent(new PopStateEvent("popstate"));
}
