// Bundles the Lit dashboard into dist/ui, which the Worker serves as static assets.
import { build } from "esbuild";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { zodWithoutJsonSchema } from "./zod-without-json-schema.mjs";

export { zodWithoutJsonSchema };

const root = fileURLToPath(new URL("..", import.meta.url));
const defaultOutdir = `${root}dist/ui`;

/**
 * `import { z } from "zod"` hands the bundler zod's whole namespace object
 * (every locale, JSON Schema, …: ~95 KB gzip); `import * as z` lets it keep
 * only what the schemas use (~30 KB). The shared modules are rewritten to the
 * second form for the browser bundle; the code means the same either way.
 */
const zodNamespaceImport = {
  name: "zod-namespace-import",
  setup(b) {
    b.onLoad({ filter: /[\\/]common[\\/][^\\/]+\.ts$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const namespaced = source.replace(/import\s*\{\s*z\s*\}\s*from\s*(["'])zod\1/g, 'import * as z from "zod"');
      return { contents: markSchemasPure(namespaced, args.path), loader: "ts" };
    });
  },
};

/**
 * zod builds a schema with calls a bundler must assume have side effects, so
 * every schema of the shared modules (the agent's messages, the settings, …)
 * would ship with everything it uses. Each top-level `const X = z.…`
 * becomes `const X = /* @__PURE__ *\/ (() => z.…)()`: evaluated at the same
 * moment as before, and dropped when the dashboard never reads it.
 */
export function markSchemasPure(source, fileName = "module.ts") {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const spans = [];
  for (const statement of file.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const declaration of statement.declarationList.declarations) {
      const init = declaration.initializer;
      if (init && ts.isCallExpression(init) && init.getText(file).startsWith("z.")) spans.push([init.getStart(file), init.getEnd()]);
    }
  }
  let out = source;
  for (const [start, end] of spans.reverse()) out = `${out.slice(0, start)}/* @__PURE__ */ (() => ${out.slice(start, end)})()${out.slice(end)}`;
  return out;
}

/** Collapses the CSS in Lit's css`` templates (esbuild leaves template literals alone). */
export function minifyCss(text) {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\s+/g, " ")
    .replace(/\s*([{};,>])\s*/g, "$1")
    .replace(/:\s+/g, ":")
    .replace(/;}/g, "}")
    .trim();
}

/**
 * Collapses whitespace runs to one space in the static parts of html``
 * templates, nested ones included. One space renders like many outside <pre>,
 * and the dashboard's <pre>s hold only interpolated text.
 */
export function minifyHtmlTemplates(source) {
  let out = "";
  let i = 0;
  for (;;) {
    const start = source.indexOf("html`", i);
    if (start === -1) return out + source.slice(i);
    const tagged = start === 0 || !/[\w$.]/.test(source[start - 1]);
    out += source.slice(i, start + 5);
    if (!tagged) {
      i = start + 5;
      continue;
    }
    const [text, end] = readTemplate(source, start + 5, true);
    out += text;
    i = end;
  }
}

/** From just after an opening backtick to just after the closing one. */
function readTemplate(s, i, collapse) {
  let out = "";
  let chunk = "";
  const flush = () => (collapse ? chunk.replace(/\s+/g, " ") : chunk);
  while (i < s.length) {
    const c = s[i];
    if (c === "\\") {
      chunk += s.slice(i, i + 2);
      i += 2;
    } else if (c === "`") {
      return [out + flush() + "`", i + 1];
    } else if (c === "$" && s[i + 1] === "{") {
      out += flush() + "${";
      chunk = "";
      const [expression, end] = readExpression(s, i + 2);
      out += expression;
      i = end;
    } else {
      chunk += c;
      i += 1;
    }
  }
  throw new Error("unterminated template literal");
}

/** From just after `${` to just after its closing brace; templates inside are read too. */
function readExpression(s, i) {
  let out = "";
  let depth = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < s.length && s[j] !== c) j += s[j] === "\\" ? 2 : 1;
      out += s.slice(i, j + 1);
      i = j + 1;
    } else if (c === "`") {
      const [text, end] = readTemplate(s, i + 1, /(^|[^\w$.])html$/.test(out));
      out += "`" + text;
      i = end;
    } else {
      if (c === "{") depth += 1;
      if (c === "}" && depth-- === 0) return [out + "}", i + 1];
      out += c;
      i += 1;
    }
  }
  throw new Error("unterminated template expression");
}

const minifyTemplates = {
  name: "minify-lit-templates",
  setup(b) {
    b.onLoad({ filter: /[\\/]ui[\\/].+\.ts$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      // The dashboard's css`` templates interpolate nothing, so a template is everything up to the next backtick.
      const css = source.replace(/\bcss`([^`$]*)`/g, (_, body) => `css\`${minifyCss(body)}\``);
      return { contents: minifyHtmlTemplates(css), loader: "ts" };
    });
  },
};

/** Schema methods zod itself never calls, each pulling in a schema type of its own (`.and(` → intersections). */
const OPTIONAL_SCHEMA_METHODS = ["and", "or", "catch", "readonly", "transform", "pipe", "nonoptional", "exactOptional", "nullish", "superRefine"];

/**
 * zod's string schemas carry a method per format (email, uuid, ipv6, jwt,
 * …), each pulling in its validator and regexes (~2 KB gzip), whether used
 * or not; so do a few methods of every schema. The ones no dashboard or
 * shared source calls (`.ipv6(`, `.and(`) are taken out of the browser
 * bundle; one a source starts calling stays in by itself, since the sources
 * are read on every build.
 */
const zodStringFormatsInUse = {
  name: "zod-string-formats-in-use",
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]classic[\\/]schemas\.js$/ }, async (args) => {
      const sources = [];
      for (const dir of ["common", "ui"]) {
        for (const entry of await readdir(`${root}${dir}`, { recursive: true })) {
          if (entry.endsWith(".ts")) sources.push(await readFile(`${root}${dir}/${entry}`, "utf8"));
        }
      }
      const text = sources.join("\n");
      const source = await readFile(args.path, "utf8");
      const unused = (name) => !text.includes(`.${name}(`);
      const contents = source
        .replace(/^ {4}(\w+)\(params\) \{\n {8}return this\.check\(core\._\w+\(Zod\w+, params\)\);\n {4}\},\n/gm, (method, name) =>
          unused(name) ? "" : method,
        )
        .replace(/^ {4}(\w+)\(\w*\) \{\n {8}return [^\n]*;\n {4}\},\n/gm, (method, name) =>
          OPTIONAL_SCHEMA_METHODS.includes(name) && unused(name) ? "" : method,
        );
      if (contents === source) throw new Error("zod-string-formats-in-use: no format method found; zod's classic/schemas.js changed shape");
      return { contents, loader: "js" };
    });
  },
};

/** What the browser bundle does to zod and the shared modules (tests bundle with them too). */
export const zodPlugins = [zodNamespaceImport, zodWithoutJsonSchema, zodStringFormatsInUse];

/**
 * The dashboard's module goes into index.html itself rather than a second
 * file: a cold first paint waited for app.js (the second round trip, after
 * the page) longer than for anything else (bench/results/ui.json, phases),
 * and a returning browser revalidated it anyway. Inline, it evaluates while
 * the fleet answer, preloaded by the page, is on its way.
 */
function inlineModule(html, js) {
  if (/<\/script|<!--/i.test(js)) throw new Error("build-ui: the bundle contains </script or <!--; it cannot be inlined as it is");
  const tag = '<script type="module" src="/app.js"></script>';
  if (!html.includes(tag)) throw new Error(`build-ui: ui/index.html has no ${tag} to inline`);
  // From any path the page is served at, the source map is the one at the root.
  const script = js
    .replace(/\/\/# sourceMappingURL=app\.js\.map\s*$/, "//# sourceMappingURL=/app.js.map\n")
    .replace("see app.js.LEGAL.txt", "see /app.js.LEGAL.txt");
  return html.replace(tag, () => `<script type="module">${script}</script>`);
}

/** The JavaScript a browser is sent: the page's inline modules and any .js file beside it. */
export async function shippedJs(outdir = defaultOutdir) {
  const html = await readFile(`${outdir}/index.html`, "utf8");
  const scripts = [...html.matchAll(/<script type="module">([\s\S]*?)<\/script>/g)].map((m) => m[1]);
  for (const file of await readdir(outdir)) if (file.endsWith(".js")) scripts.push(await readFile(`${outdir}/${file}`, "utf8"));
  return scripts;
}

/** Builds dist/ui (or `outdir`): index.html with the dashboard's module inline, and its source map. */
export async function buildUi({ minify = true, outdir = defaultOutdir } = {}) {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const result = await build({
    entryPoints: [`${root}ui/main.ts`],
    bundle: true,
    format: "esm",
    target: "es2022",
    minify,
    sourcemap: true,
    metafile: true,
    legalComments: "linked",
    tsconfig: `${root}ui/tsconfig.json`,
    outfile: `${outdir}/app.js`,
    logLevel: "warning",
    plugins: minify ? [...zodPlugins, minifyTemplates] : zodPlugins,
  });
  const html = await readFile(`${root}ui/index.html`, "utf8");
  await writeFile(`${outdir}/index.html`, inlineModule(html, await readFile(`${outdir}/app.js`, "utf8")));
  await rm(`${outdir}/app.js`);
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildUi();
  console.log(`built ${defaultOutdir}`);
}
