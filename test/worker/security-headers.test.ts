// The security headers against the real static assets (the dashboard test/support/build-ui.ts built, with the
// _headers file scripts/build-ui.mjs wrote beside it) and the real Worker. The page is asked of env.ASSETS: the asset
// worker behind that binding is the one that answers the dashboard's paths before the Worker runs.
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ErrorBody, PollResponse, WORKER_MARKER_HEADER } from "../../common/protocol.ts";
import { agentFetch, api, createHost, pollBody } from "./helpers.ts";

/** The headers every answer carries, page or API, the same on both. */
const SHARED = {
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
};

const page = (path: string) => env.ASSETS.fetch(`http://localhost${path}`, { headers: { "sec-fetch-mode": "navigate", accept: "text/html" } });
const worker = (path: string) => exports.default.fetch(new Request(`http://localhost${path}`));

/** A CSP as directive → its sources. */
function directives(csp: string | null): Map<string, string[]> {
  expect(csp, "no Content-Security-Policy").toBeTruthy();
  return new Map(
    csp!
      .split(";")
      .map((part) => part.trim().split(/\s+/))
      .filter((words) => words[0])
      .map(([name, ...sources]) => [name!, sources]),
  );
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return `'sha256-${btoa(String.fromCharCode(...new Uint8Array(digest)))}'`;
}

/** The texts of a page's inline <script>s and <style>s, read by workerd's HTML parser. */
async function inlineTexts(response: Response): Promise<{ scripts: string[]; styles: string[] }> {
  const found = { scripts: [] as string[], styles: [] as string[] };
  const collect = (into: string[], when: (element: Element) => boolean): HTMLRewriterElementContentHandlers => {
    let open = false;
    return {
      element(element) {
        open = when(element);
        if (open) into.push("");
      },
      text(text) {
        if (open) into[into.length - 1] += text.text;
      },
    };
  };
  await new HTMLRewriter()
    .on("script", collect(found.scripts, (element) => !element.hasAttribute("src")))
    .on("style", collect(found.styles, () => true))
    .transform(response)
    .text();
  return found;
}

function expectShared(response: Response): void {
  for (const [name, value] of Object.entries(SHARED)) expect([name, response.headers.get(name)]).toEqual([name, value]);
}

describe("the dashboard's page", () => {
  it.each(["/", "/hosts/web1", "/settings", "/audit?host=web1"])("at %s is the page with the CSP, the frame refusal, nosniff and no referrer", async (path) => {
    const res = await page(path);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expectShared(res);
    expect(res.headers.get("permissions-policy")).toBe("camera=(), microphone=(), geolocation=()");
    const csp = directives(res.headers.get("content-security-policy"));
    expect(csp.get("default-src")).toEqual(["'none'"]);
    expect(csp.get("frame-ancestors")).toEqual(["'none'"]);
    expect(csp.get("object-src")).toEqual(["'none'"]);
    expect(csp.get("base-uri")).toEqual(["'none'"]);
    expect(csp.get("form-action")).toEqual(["'self'"]);
    expect(csp.get("connect-src")).toEqual(["'self'"]);
    expect(csp.get("img-src")).toEqual(["data:"]);
    for (const sources of csp.values()) expect(sources).not.toContain("'unsafe-inline'");
    expect(csp.get("script-src")).not.toContain("'unsafe-eval'");
    await res.body?.cancel();
  });

  it("allows exactly the inline module and the inline style that are in the built page, by their sha256", async () => {
    const res = await page("/");
    const csp = directives(res.headers.get("content-security-policy"));
    const { scripts, styles } = await inlineTexts(res);
    // The first paint's module, big (the whole dashboard's first paint), and the theme.
    expect(scripts).toHaveLength(1);
    expect(scripts[0]!.length).toBeGreaterThan(10_000);
    expect(styles).toHaveLength(1);
    expect(csp.get("script-src")).toEqual(["'self'", await sha256(scripts[0]!)]);
    const styleSources = csp.get("style-src")!;
    expect(styleSources[0]).toBe(await sha256(styles[0]!));
    // Besides it only the hashes of static style="…" attributes ('unsafe-hashes'), never 'self' or a host.
    expect(styleSources.slice(1).filter((source) => !/^'sha256-[\w+/]+=*'$/.test(source))).toEqual(["'unsafe-hashes'"]);
  });

  it("is what /_headers answers: the headers file itself is not served", async () => {
    const res = await page("/_headers");
    const body = await res.text();
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(body).toContain("<nf-app>");
    expect(body).not.toMatch(/Content-Security-Policy:/i);
  });
});

describe("the Worker's answers", () => {
  /** No page: the Worker's own CSP lets its answers load nothing and be framed by nobody. */
  function expectWorkerHeaders(res: Response): void {
    expectShared(res);
    expect(directives(res.headers.get("content-security-policy"))).toEqual(
      new Map([
        ["default-src", ["'none'"]],
        ["frame-ancestors", ["'none'"]],
      ]),
    );
    expect(res.headers.get("strict-transport-security")).toBeNull();
    // The marker the agent and `nixfleet doctor` tell the Worker's answers from Access's by.
    expect(res.headers.get(WORKER_MARKER_HEADER)).toBe("1");
  }

  it("a chunk: JavaScript with nosniff, the Worker's CSP replacing the page's", async () => {
    const html = await (await page("/")).text();
    const url = /import\("(\/chunks\/nf-settings-panel-\w+\.js)"\)/.exec(html)?.[1];
    expect(url, "the built page imports no settings chunk").toBeTruthy();
    const res = await worker(url!);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/javascript/);
    expectWorkerHeaders(res);
    await res.body?.cancel();
  });

  it("an API answer, an API error still in the error shape, and a refused agent keep their bodies and get the headers", async () => {
    const health = await api("/api/health");
    expect(health.status).toBe(200);
    expectWorkerHeaders(health);
    expect(await health.json()).toMatchObject({ ok: true });

    const missing = await api("/api/no-such-thing");
    expect(missing.status).toBe(404);
    expectWorkerHeaders(missing);
    expect(ErrorBody.parse(await missing.json()).error.code).toBe("not_found");

    const refused = await agentFetch("not-a-token", "/poll?wait=0", pollBody());
    expect(refused.status).toBe(401);
    expectWorkerHeaders(refused);
    expect(ErrorBody.parse(await refused.json()).error.code).toBeTruthy();
  });

  it("the refusals of /metrics and of a webhook with a bad signature carry the headers and the marker too", async () => {
    const metrics = await worker("/metrics");
    expect([401, 503]).toContain(metrics.status);
    expectWorkerHeaders(metrics);
    expect(ErrorBody.safeParse(await metrics.json()).success).toBe(true);

    const webhook = await exports.default.fetch(
      new Request("http://localhost/webhooks/github", {
        method: "POST",
        headers: { "x-github-event": "ping", "x-github-delivery": "d-1", "x-hub-signature-256": "sha256=00", "content-type": "application/json" },
        body: "{}",
      }),
    );
    expect(webhook.status).toBe(401);
    expectWorkerHeaders(webhook);
    expect(ErrorBody.safeParse(await webhook.json()).success).toBe(true);
  });

  it("an agent's poll answers as before, with the headers", async () => {
    const { token } = await createHost("headers-agent");
    const res = await agentFetch(token, "/poll?wait=0", pollBody());
    expect(res.status).toBe(200);
    expectWorkerHeaders(res);
    expect(PollResponse.parse(await res.json()).commands).toEqual([]);
  });

  it("the dashboard's socket still upgrades (a 101 carries none of these headers)", async () => {
    const res = await exports.default.fetch(new Request("http://localhost/api/events", { headers: { upgrade: "websocket" } }));
    expect(res.status).toBe(101);
    expect(res.webSocket).toBeTruthy();
    res.webSocket!.accept();
    res.webSocket!.close(1000, "done");
  });
});
