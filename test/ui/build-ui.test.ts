import { build } from "esbuild";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { buildUi, markSchemasPure, minifyCss, minifyHtmlTemplates, shippedJs, zodPlugins } from "../../scripts/build-ui.mjs";
import { hostView, rolloutView } from "./fixtures.ts";

/** The shipped JS's limit (bench/ui.ts reports the same measure). */
const JS_GZIP_LIMIT = 60 * 1024;

describe("template minifying for the dashboard bundle", () => {
  it("collapses whitespace in html templates, nested ones too, and leaves expressions alone", () => {
    const source = 'const x = html`<div>\n    <span class="a   b">${cond ? html`<b>\n  yes</b>` : "two  spaces"}</span>\n</div>`;';
    expect(minifyHtmlTemplates(source)).toBe('const x = html`<div> <span class="a b">${cond ? html`<b> yes</b>` : "two  spaces"}</span> </div>`;');
  });

  it("leaves other template literals as they are", () => {
    const source = 'const a = `keep\n   this`; const b = html`<p>\n x</p>`; const c = myhtml`<p>\n  y</p>`;';
    expect(minifyHtmlTemplates(source)).toBe('const a = `keep\n   this`; const b = html`<p> x</p>`; const c = myhtml`<p>\n  y</p>`;');
  });

  it("handles braces, strings and plain templates inside expressions", () => {
    const source = 'html`<p a=${{ x: "}" }.x}>\n ${`raw\n  ${1}`}</p>`';
    expect(minifyHtmlTemplates(source)).toBe('html`<p a=${{ x: "}" }.x}> ${`raw\n  ${1}`}</p>`');
  });

  it("keeps selectors' descendant spaces and quoted content when minifying CSS", () => {
    expect(minifyCss("\n  /* why */\n  .a .b:hover,\n  .c > .d {\n    content: \"sug gested\";\n    margin: 0 auto;\n  }\n")).toBe(
      '.a .b:hover,.c>.d{content:"sug gested";margin:0 auto}',
    );
  });
});

describe("shrinking the shared modules for the browser", () => {
  it("makes top-level zod schemas droppable when unused, evaluated where they were, and leaves everything else alone", () => {
    const source = [
      'export const A = z.object({ a: z.string() }).nullable();',
      "const names = ['x'] as const;",
      "export const B = names.map((n) => n);",
      "export function f() { const C = z.string(); return C; }",
    ].join("\n");
    expect(markSchemasPure(source).split("\n")).toEqual([
      "export const A = /* @__PURE__ */ (() => z.object({ a: z.string() }).nullable())();",
      "const names = ['x'] as const;",
      "export const B = names.map((n) => n);",
      "export function f() { const C = z.string(); return C; }",
    ]);
  });

  it("the browser bundle's zod still parses every dashboard answer, lazy schemas included, and names what is wrong", async () => {
    const outdir = await mkdtemp(join(tmpdir(), "nixfleet-zod-"));
    try {
      const outfile = join(outdir, "schemas.mjs");
      await build({
        stdin: {
          contents: 'export { FleetResponse, RolloutsResponse } from "./ui/data/schemas.ts"; export { DashboardEvent } from "./common/protocol.ts";',
          resolveDir: join(import.meta.dirname, "../.."),
          loader: "ts",
        },
        bundle: true,
        format: "esm",
        platform: "browser",
        outfile,
        logLevel: "silent",
        plugins: zodPlugins,
      });
      const bundled = await import(pathToFileURL(outfile).href);
      const hold = { reason: "kernel bisect", until: "2025-12-10T14:00:00.000Z", by: "alice@example.com", at: "2025-12-01T12:00:00.000Z" };
      const fleet = { hosts: [hostView("web1", { hold, rollout: { id: "ro_1", state: "switching", wave: 1 } })], summary: {}, repo: null, updatePrs: [] };
      expect(bundled.FleetResponse.parse(fleet).hosts[0].hold).toEqual(hold);
      const rollout = rolloutView("ro_1", [["web1"], ["web2"]]);
      expect(bundled.DashboardEvent.parse({ type: "rollout", rollout }).rollout.waves).toHaveLength(2);
      const bad = bundled.RolloutsResponse.safeParse({ rollouts: [{ ...rollout, total: "nine" }] });
      expect(bad.success).toBe(false);
      expect(bad.error.issues[0].path).toEqual(["rollouts", 0, "total"]);
      // zod keeps its messages in one config per process (globalThis), which this test process's own zod already set.
      expect(bad.error.issues[0].message).toContain("expected number");
      const late = bundled.FleetResponse.safeParse({ ...fleet, hosts: [{ ...fleet.hosts[0], hold: { ...hold, until: "next week" } }] });
      expect(late.error.issues[0].path).toEqual(["hosts", 0, "hold", "until"]);
    } finally {
      await rm(outdir, { recursive: true, force: true });
    }
  });
});

describe("buildUi", () => {
  it("writes the page with one self-contained module inline, within 60 KB gzip, and its source map", async () => {
    const outdir = await mkdtemp(join(tmpdir(), "nixfleet-ui-"));
    try {
      await buildUi({ outdir });
      expect((await readdir(outdir)).sort()).toEqual(["app.js.LEGAL.txt", "app.js.map", "index.html"]);
      const html = await readFile(join(outdir, "index.html"), "utf8");
      expect(html).not.toContain('src="/app.js"');
      const scripts = await shippedJs(outdir);
      expect(scripts).toHaveLength(1);
      const js = scripts[0]!;
      // No bare imports left for the browser to resolve, and nothing that would end the inline script early.
      expect(js).not.toMatch(/\bfrom\s*"(lit|zod)/);
      expect(js).not.toMatch(/<\/script/i);
      expect(js).toContain("nf-app");
      // The page is served at every dashboard path: the map is found from the root.
      expect(js.trimEnd()).toMatch(/\/\/# sourceMappingURL=\/app\.js\.map$/);
      // The module comes after the preloads in <head>, so the fleet answer is requested before it runs.
      expect(html.indexOf('rel="preload" href="/api/hosts"')).toBeLessThan(html.indexOf('<script type="module">'));
      const gzipBytes = scripts.reduce((sum, script) => sum + gzipSync(script, { level: 9 }).byteLength, 0);
      expect(gzipBytes).toBeLessThanOrEqual(JS_GZIP_LIMIT);
    } finally {
      await rm(outdir, { recursive: true, force: true });
    }
  });
});
