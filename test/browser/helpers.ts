import type { Locator, Page } from "playwright-core";
import type { Report } from "../../common/protocol.ts";
import { eventually as waitUntil } from "../support/wait.ts";
import type { Dashboard } from "./dashboard.ts";

/** One host's row of the fleet table. */
export function fleetRow(page: Page, host: string): Locator {
  return page.locator(`nf-fleet-table [role=row][data-host="${host}"]`);
}

/** The open action menu. */
export function menu(page: Page): Locator {
  return page.getByRole("menu");
}

/** Adds a host through the admin API and returns its one-time token. */
export async function addHostThroughApi(dashboard: Dashboard, name: string, platform = "nixos"): Promise<{ token: string }> {
  const created = await dashboard.api("/api/hosts", { method: "POST", body: { name, platform } });
  const body = created.json;
  if (created.status !== 201 || typeof body !== "object" || body === null || !("token" in body) || typeof body.token !== "string") {
    throw new Error(`adding ${name} failed: ${created.status} ${JSON.stringify(body)}`);
  }
  return { token: body.token };
}

/** One agent poll that returns at once: makes the host online as a real agent would, with its report when given. */
export async function agentPoll(url: string, token: string, report?: Report): Promise<Response> {
  const response = await fetch(`${url}/api/agent/poll?wait=0`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ protocol: 1, agentSession: "browser-test-session", activeCommands: [], acks: [], ...(report === undefined ? {} : { report }) }),
  });
  await response.arrayBuffer();
  return response;
}

/**
 * What has keyboard focus, through the shadow roots: `menuitem:Pull`,
 * `button:Cancel`, or a compartment cell of the fleet table (`cell:git`).
 */
export function deepFocus(page: Page): Promise<string> {
  return page.evaluate(() => {
    let element: Element | null = document.activeElement;
    while (element?.shadowRoot?.activeElement) element = element.shadowRoot.activeElement;
    if (!element) return "nothing";
    const compartment = element.getAttribute("data-compartment");
    if (compartment !== null) return `cell:${compartment}`;
    const role = element.getAttribute("role") ?? element.localName;
    const label = element.querySelector(".label")?.textContent ?? element.textContent ?? "";
    return `${role}:${label.trim()}`;
  });
}

/**
 * Waits until `check` passes (webhooks and agents take a moment); for hooks, where expect.poll is not
 * allowed. A check that throws fails at once: it says what went wrong (a command failed, say).
 */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  await waitUntil(what, check, { timeoutMs, intervalMs: 200, failFast: true });
}
