// The page's Content-Security-Policy as scripts/build-ui.mjs derives it from the built page and chunks
// (test/worker/security-headers.test.ts checks the real build as served; test/browser/security-headers.test.ts in Chromium).
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { contentSecurityPolicy, headersFile } from "../../scripts/build-ui.mjs";

const hash = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
const directive = (csp: string, name: string) => csp.split("; ").find((part) => part.startsWith(`${name} `));

const page = (head: string, body = "") => `<!doctype html><html><head>${head}</head><body>${body}</body></html>`;

describe("the dashboard's Content-Security-Policy", () => {
  it("allows each inline script and style by its hash, and a script with src only through 'self'", () => {
    const csp = contentSecurityPolicy(page('<style>:root{--a:1}</style><script type="module">run()</script><script src="/x.js"></script>'));
    expect(directive(csp, "script-src")).toBe(`script-src 'self' ${hash("run()")}`);
    expect(directive(csp, "style-src")).toBe(`style-src ${hash(":root{--a:1}")}`);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
  });

  it("allows a static style attribute of the shipped code by its hash ('unsafe-hashes'), once however often it appears", () => {
    const chunk = 'const t=html`<fieldset style="display:grid;gap:1rem"></fieldset><div style="margin:0"></div><p style="display:grid;gap:1rem">`;';
    const csp = contentSecurityPolicy(page("<style>a{}</style>"), [chunk]);
    expect(directive(csp, "style-src")).toBe(`style-src ${hash("a{}")} 'unsafe-hashes' ${[hash("display:grid;gap:1rem"), hash("margin:0")].sort().join(" ")}`);
  });

  it("refuses to build a bound style attribute, which the policy would refuse at run time", () => {
    expect(() => contentSecurityPolicy(page(""), ["html`<div style=${color}></div>`"])).toThrow(/bound style=.*use a class or styleMap/);
  });

  it("allows no style at all when the page has none", () => {
    expect(directive(contentSecurityPolicy(page("")), "style-src")).toBe("style-src 'none'");
  });

  it("writes one rule for every path, with the CSP and the frame, sniffing and referrer headers", () => {
    const file = headersFile(page('<script type="module">run()</script>'));
    const lines = file.split("\n").filter((line) => line && !line.startsWith("#"));
    expect(lines[0]).toBe("/*");
    expect(lines.slice(1).map((line) => line.split(":")[0]!.trim())).toEqual([
      "Content-Security-Policy",
      "X-Frame-Options",
      "X-Content-Type-Options",
      "Referrer-Policy",
      "Cross-Origin-Opener-Policy",
      "Permissions-Policy",
    ]);
    for (const line of lines.slice(1)) expect(line).toMatch(/^ {2}\S/);
  });
});
