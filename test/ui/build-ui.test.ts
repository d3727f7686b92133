import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildUi, minifyCss, minifyHtmlTemplates } from "../../scripts/build-ui.mjs";

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

describe("buildUi", () => {
  it("writes one self-contained module, its source map and the page", async () => {
    const outdir = await mkdtemp(join(tmpdir(), "nixfleet-ui-"));
    try {
      await buildUi({ outdir });
      expect((await readdir(outdir)).sort()).toEqual(expect.arrayContaining(["app.js", "app.js.map", "index.html"]));
      const js = await readFile(join(outdir, "app.js"), "utf8");
      // No bare imports left for the browser to resolve.
      expect(js).not.toMatch(/\bfrom\s*"(lit|zod)/);
      expect(js).toContain("nf-app");
      expect(await readFile(join(outdir, "index.html"), "utf8")).toContain('<script type="module" src="/app.js">');
    } finally {
      await rm(outdir, { recursive: true, force: true });
    }
  });
});
