// GET /: the dashboard's page with the fleet table written in by the Worker (worker/routes/fleet-page.ts), from
// the real static assets test/support/build-ui.ts built and the real coordinator and D1.
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { FIRST_ROWS, WRITTEN_ROWS } from "../../common/fleet-table.ts";
import type { HostView, Role } from "../../common/protocol.ts";
import { FLEET_ANSWER_ID, HEALTH_ANSWER_ID, ME_ANSWER_ID, TABLE_END_ID, TABLE_RENDER_BLOCK, fleetPageHtml, fleetTableMarkup } from "../../worker/fleet-page.ts";
import { api, createHost } from "./helpers.ts";

const page = (host = "localhost") => exports.default.fetch(new Request(`http://${host}/`, { headers: { accept: "text/html", host } }));

/** An answer the page carries (the fleet's by default), read back the way the browser does (the data block's text, JSON). */
function carriedAnswer(html: string, id = FLEET_ANSWER_ID): unknown {
  const text = new RegExp(`<script type="application/json" id="${id}">([\\s\\S]*?)</script>`).exec(html)?.[1];
  expect(text, `the page carries no ${id}`).toBeDefined();
  return JSON.parse(text!);
}

/** A host as the renderer reads it: no report, every compartment unknown. */
const plainHost = (name: string, online: boolean) => ({
  name,
  platform: "nixos",
  online,
  lastSeenAt: null,
  report: null,
  hold: null,
  diskLow: null,
  compartments: Object.fromEntries(["agent", "git", "lock", "system", "tests"].map((n) => [n, { state: "gray", stale: false, reason: "" }])),
});

describe("the fleet page", () => {
  it("writes every host's row and the same answer GET /api/hosts gives, under the page's CSP, and escapes a hostile name in markup and data", async () => {
    const hostile = `<img src=x onerror=alert(1)>"'&</script>`;
    // Host names are checked (HostName), so a hostile string reaches the page through what the API accepts:
    // a name the schema allows, and a hostile one handed to the renderer directly, below.
    await createHost("web-1");
    await createHost("db-2", "darwin");
    const res = await page();
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    // The static page's own CSP (scripts/build-ui.mjs), not the Worker's: the module file loads from 'self'.
    const staticPage = await env.ASSETS.fetch("http://localhost/", { headers: { accept: "text/html" } });
    await staticPage.body?.cancel();
    expect(res.headers.get("content-security-policy")).toBe(staticPage.headers.get("content-security-policy"));
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    const html = await res.text();
    const fleet = (await (await api("/api/hosts")).json()) as { hosts: HostView[] };
    // The same value as the API's answer, byte for byte once parsed.
    expect(carriedAnswer(html)).toEqual(fleet);
    for (const name of ["web-1", "db-2"]) expect(html).toContain(`data-host="${name}"`);
    expect(html).toMatch(/<script type="module" src="\/chunks\/first-paint-\w+\.js"><\/script>/);
    expect(html).not.toContain('rel="preload" href="/api/hosts"');
    // The health answer rides along (it decides the banner the components show above the table), and the page
    // writes the same banner: this control plane has no Access, so it is in development mode.
    expect(carriedAnswer(html, HEALTH_ANSWER_ID)).toEqual(await (await api("/api/health")).json());
    expect(html).not.toContain('rel="preload" href="/api/health"');
    // Who it was written for rides along too, the same value GET /api/me answers: the development identity, an admin.
    expect(carriedAnswer(html, ME_ANSWER_ID)).toEqual(await (await api("/api/me")).json());
    expect(html).not.toContain('class="role-note"');
    expect(html).toMatch(/<button class="btn primary"><span aria-hidden="true">\+<\/span> Add host<\/button>/);
    expect(html).toContain('<section class="dev" aria-label="Development mode">');
    // The blocks the components' fleet page has above its table, counted from the same fleet.
    expect(html).toContain("2 hosts · 0 online");
    expect(html).toContain("Reboot needed (0)");
    // The first frame waits for the table: the render-blocking link names the element right after it.
    expect(html).toContain(TABLE_RENDER_BLOCK);
    expect(html.indexOf(`id="${TABLE_END_ID}"`)).toBeGreaterThan(html.lastIndexOf('data-host="'));
    expect(html.indexOf(`id="${TABLE_END_ID}"`)).toBeLessThan(html.indexOf(`id="${FLEET_ANSWER_ID}"`));

    const template = '<html><body><nf-app>Loading NixFleet…</nf-app></body></html>';
    const rendered = fleetPageHtml(template, { hosts: [{ ...fleet.hosts[0]!, name: hostile, diskLow: hostile }] }, JSON.stringify({ hosts: [{ name: hostile }] }), Date.now())!;
    expect(rendered).not.toContain("<img");
    expect(rendered).not.toContain(`"'&</script>`);
    expect(rendered).toContain("&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;&lt;/script&gt;");
    // The data block holds exactly one </script>, its own, and gives the hostile name back unchanged.
    expect(rendered.match(/<\/script>/g)).toHaveLength(1);
    expect(carriedAnswer(rendered)).toEqual({ hosts: [{ name: hostile }] });
  });

  it(`writes the first ${WRITTEN_ROWS} rows of a larger fleet, an empty row of their height for each of the rest up to ${FIRST_ROWS}, and the whole answer`, () => {
    const hosts = Array.from({ length: FIRST_ROWS + 5 }, (_, i) => plainHost(`h-${i}`, false));
    const answer = JSON.stringify({ hosts });
    const rendered = fleetPageHtml("<body><nf-app>Loading NixFleet…</nf-app></body>", { hosts } as never, answer, Date.now())!;
    expect(rendered.match(/data-host=/g)).toHaveLength(WRITTEN_ROWS);
    expect(rendered.match(/<div class="tr reserved" aria-hidden="true"><\/div>/g)).toHaveLength(FIRST_ROWS - WRITTEN_ROWS);
    expect(rendered).toContain(`aria-rowcount="${FIRST_ROWS + 6}"`);
    expect((carriedAnswer(rendered) as { hosts: unknown[] }).hosts).toHaveLength(FIRST_ROWS + 5);
  });

  it("disables what the identity's role may not do and says why, as the components do", () => {
    const markup = (role: Role | null, online = true) =>
      fleetTableMarkup({ hosts: [plainHost("h", online)] } as never, Date.now(), { development: false, me: role === null ? null : { actor: `${role}@example.com`, role } });
    const addHost = (html: string) => /<button class="btn primary"([^>]*)>/.exec(html)?.[1];
    const bulk = (html: string) => [...html.matchAll(/<button class="btn small"([^>]*)>/g)].map((m) => m[1]);

    const viewer = markup("viewer");
    expect(viewer).toContain('<span class="role-note">viewer@example.com · viewer: read only</span>');
    expect(addHost(viewer)).toBe(' disabled title="needs the admin role: viewer@example.com is a viewer"');
    expect(bulk(viewer).length).toBeGreaterThan(0);
    for (const attributes of bulk(viewer)) expect(attributes).toBe(' disabled title="needs the operator role: viewer@example.com is a viewer"');

    const operator = markup("operator");
    expect(operator).toContain('<span class="role-note">operator@example.com · operator: runs commands, cannot add or remove hosts</span>');
    expect(addHost(operator)).toBe(' disabled title="needs the admin role: operator@example.com is an operator"');
    for (const attributes of bulk(operator)) expect(attributes).toBe("");

    // An admin, or an identity not known, has everything offered; with no host online there is nothing to queue for.
    for (const role of ["admin", null] as const) {
      const html = markup(role);
      expect(html).not.toContain("role-note");
      expect(addHost(html)).toBe("");
      for (const attributes of bulk(html)) expect(attributes).toBe("");
      for (const attributes of bulk(markup(role, false))) expect(attributes).toBe(" disabled");
    }
  });

  it("gives a request without an identity the static page, with no fleet in it", async () => {
    await createHost("secret-host");
    // Not local and no Access configured: the API refuses it (403), so the page carries nothing.
    const res = await page("fleet.example.com");
    const html = await res.text();
    expect(html).toContain("<nf-app>Loading NixFleet…</nf-app>");
    expect(html).not.toContain("secret-host");
    expect(html).not.toContain(`id="${FLEET_ANSWER_ID}"`);
    expect(html).not.toContain(`id="${ME_ANSWER_ID}"`);
    expect((await exports.default.fetch(new Request("http://fleet.example.com/api/hosts"))).status).toBe(403);
  });
});
