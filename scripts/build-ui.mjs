// Bundles the Lit dashboard into dist/ui, which the Worker serves as static assets.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import ts from "typescript";
import { zodWithoutJsonSchema } from "./zod-without-json-schema.mjs";
import { answerChecksSource } from "./answer-checks.mjs";

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
    b.onLoad({ filter: SHARED_MODULE }, async (args) => {
      const source = await readFile(args.path, "utf8");
      return { contents: markSchemasPure(namespacedZod(source), args.path), loader: "ts" };
    });
  },
};

const SHARED_MODULE = /[\\/]common[\\/](?:[^\\/]+[\\/])*[^\\/]+\.ts$/;

function namespacedZod(source) {
  return source.replace(/import\s*\{\s*z\s*\}\s*from\s*(["'])zod\1/g, 'import * as z from "zod"');
}

/**
 * zod builds a schema with calls a bundler must assume have side effects, so
 * every schema of the shared modules (the agent's messages, the settings, …)
 * would ship with everything it uses. Each top-level `const X = z.…`
 * becomes `const X = /* @__PURE__ *\/ (() => (z.…))()`: evaluated at the same
 * moment as before, and dropped when the dashboard never reads it.
 */
export function markSchemasPure(source, fileName = "module.ts") {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const spans = [];
  for (const statement of file.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const declaration of statement.declarationList.declarations) {
      const init = declaration.initializer;
      if (init && (isSchemaChain(init) || isSchemaFields(init))) spans.push([init.getStart(file), init.getEnd()]);
    }
  }
  let out = source;
  for (const [start, end] of spans.reverse()) out = `${out.slice(0, start)}/* @__PURE__ */ (() => (${out.slice(start, end)}))()${out.slice(end)}`;
  return out;
}

/**
 * A chain of calls that starts at `z` (`z.string().max(5)`, written over several lines too) or at another
 * schema, named in PascalCase as the shared modules name them (`HostView.extend({…})`).
 */
function isSchemaChain(node) {
  if (!ts.isCallExpression(node)) return false;
  let root = node;
  while (ts.isCallExpression(root) || ts.isPropertyAccessExpression(root)) root = root.expression;
  return ts.isIdentifier(root) && (root.text === "z" || /^[A-Z][a-z]/.test(root.text));
}

/** An object literal of schemas (fields several schemas share): `{ commit: Sha1, tree: Sha1.nullable() }`. */
function isSchemaFields(node) {
  return (
    ts.isObjectLiteralExpression(node) &&
    node.properties.length > 0 &&
    node.properties.every((p) => ts.isPropertyAssignment(p) && (isSchemaChain(p.initializer) || (ts.isIdentifier(p.initializer) && /^[A-Z][a-z]/.test(p.initializer.text))))
  );
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

/**
 * ui/data/answer-checks.ts holds no check in the repository (every answer goes to zod); the browser's bundle
 * gets validators generated from the zod schemas instead (scripts/answer-checks.mjs), so the first table
 * needs no zod.
 */
const generatedAnswerChecks = {
  name: "generated-answer-checks",
  setup(b) {
    b.onLoad({ filter: /[\\/]ui[\\/]data[\\/]answer-checks\.ts$/ }, async () => ({ contents: await answerChecksSource(), loader: "js", resolveDir: `${root}ui/data` }));
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
  return html.replace(tag, () => `<script type="module">${rootedNotes(js)}</script>`);
}

/** From any path the page is served at, the source map and legal notes are the ones at the root. */
const rootedNotes = (js) => js.replace(/\/\/# sourceMappingURL=app\.js\.map\s*$/, "//# sourceMappingURL=/app.js.map\n").replace("see app.js.LEGAL.txt", "see /app.js.LEGAL.txt");

/** The page the Worker serves at / with the fleet table in it (worker/routes/fleet-page.ts), from the static assets. */
export const FLEET_PAGE = "fleet-page.html";
/** The first paint's module as a file of its own under chunks/: counted once, in index.html, never as a lazy chunk. */
const FIRST_PAINT_FILE = /^first-paint-[\w]+\.js$/;

/**
 * The fleet page: the same page, but the module is a file, not inline. A module inline in the page runs
 * before the browser's first frame (it is ready the moment the page is parsed), so the table the Worker wrote
 * into the page would never be painted before the components replace it; a module of its own is fetched
 * (from the browser's cache after the first visit: its name carries its hash) while the table paints.
 */
async function writeFleetPage(outdir, page, js) {
  const tag = '<script type="module" src="/app.js"></script>';
  const file = `first-paint-${createHash("sha256").update(js, "utf8").digest("hex").slice(0, 12)}.js`;
  await mkdir(`${outdir}/${CHUNKS}`, { recursive: true });
  await writeFile(`${outdir}/${CHUNKS}/${file}`, rootedNotes(js));
  await writeFile(`${outdir}/${FLEET_PAGE}`, page.replace(tag, () => `<script type="module" src="/${CHUNKS}/${file}"></script>`));
}

/** The JavaScript of the first paint: the page's inline modules and any .js file beside it (chunks/ is loaded later). */
export async function shippedJs(outdir = defaultOutdir) {
  const html = await readFile(`${outdir}/index.html`, "utf8");
  const scripts = [...html.matchAll(/<script type="module">([\s\S]*?)<\/script>/g)].map((m) => m[1]);
  for (const file of await readdir(outdir)) if (file.endsWith(".js")) scripts.push(await readFile(`${outdir}/${file}`, "utf8"));
  return scripts;
}

/** The lazily loaded chunks (dist/ui/chunks/*.js), each with its URL and sizes, largest first. */
export async function lazyChunks(outdir = defaultOutdir) {
  const dir = `${outdir}/${CHUNKS}`;
  const files = (await readdir(dir).catch(() => [])).filter((file) => file.endsWith(".js") && !FIRST_PAINT_FILE.test(file));
  const chunks = await Promise.all(
    files.map(async (file) => {
      const js = await readFile(`${dir}/${file}`);
      return { url: `/${CHUNKS}/${file}`, bytes: js.byteLength, gzipBytes: gzipSync(js, { level: 9 }).byteLength };
    }),
  );
  return chunks.sort((a, b) => b.gzipBytes - a.gzipBytes || a.url.localeCompare(b.url));
}

/** Where the chunks go, under dist/ui and under the dashboard's URL (served by worker/routes/chunks.ts, cached for good). */
const CHUNKS = "chunks";

/** The property (a registered symbol) of globalThis through which the first paint hands lazy chunks what they import from it. */
const HANDOVER = "nixfleet.first-paint";

/**
 * Lazily loaded pages: every dynamic `import()` in the dashboard's sources
 * becomes a chunk of its own in dist/ui/chunks/, named by its content's hash
 * (so served as immutable, worker/routes/chunks.ts), loaded the first time its
 * route is visited.
 *
 * esbuild's code splitting alone would move what a chunk shares with the
 * first paint (Lit, the styles, the formatting helpers) into a shared file
 * that the first-paint module imports: a second round trip before the fleet
 * table, which inlining the module exists to avoid; and an inline module has
 * no URL a chunk could import it from. So the first paint stays one
 * self-contained module, and hands each chunk the bindings the chunk imports
 * from first-paint modules (the first paint's own module instances, not
 * copies: one Lit, one state in each helper module) through one frozen
 * object on globalThis. A
 * first-paint module imported only for its side effect (an element it
 * defines) is already evaluated and is left out of the chunk. The shared
 * modules of common/ are not handed over: they hold no state, the first paint
 * keeps only their constants and functions, and handing a chunk their schemas
 * would bring zod back into the first paint; a chunk bundles its own copy, and
 * zod with it. What chunks share among themselves, esbuild's splitting puts in
 * shared chunks.
 *
 * Three builds: the first paint alone, to learn which modules it holds and
 * which it imports lazily; the chunks, each import of a first-paint module
 * replaced by a read of the handover; and the first paint again, with the
 * handover and the chunks' hashed URLs.
 */
async function buildLazyChunks({ common, plugins, outdir, firstPaint, lazy }) {
  const dropped = droppedPackages(firstPaint.metafile);
  const inFirstPaint = new Set(
    Object.keys(firstPaint.metafile.inputs)
      .filter((input) => !input.includes(":") && !dropped.has(packageOf(input)))
      .map((input) => resolve(root, input)),
  );
  for (const path of lazy) {
    if (inFirstPaint.has(path)) throw new Error(`build-ui: ${relative(root, path)} is imported lazily and also statically; the static import keeps it in the first paint`);
  }
  /** module key (its path from the repository root) → the names chunks import from it */
  const handover = new Map();
  const result = await build({
    ...common,
    entryPoints: [...lazy],
    splitting: true,
    outdir: `${outdir}/${CHUNKS}`,
    entryNames: "[name]-[hash]",
    chunkNames: "shared-[hash]",
    plugins: [...plugins, fromFirstPaint(inFirstPaint, handover)],
  });
  const urls = new Map();
  for (const [output, meta] of Object.entries(result.metafile.outputs)) {
    if (meta.entryPoint) urls.set(resolve(root, meta.entryPoint), `/${relative(outdir, resolve(root, output)).split(sep).join("/")}`);
  }
  return { result, urls, handover };
}

/** A module of common/ (stateless: schemas, constants, pure rules), which a chunk may bundle a copy of. */
const isSharedModule = (path) => path.startsWith(resolve(root, "common") + sep);

// The last node_modules in the path names the package, wherever node_modules is: a linked node_modules (as in
// a copy of the repository) gives its real path, outside the working directory.
const packageOf = (input) => /^(?:.*\/)?node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1] ?? null;

/**
 * The packages the first paint imports only through the shared modules and keeps nothing of: zod, whose
 * every schema the first paint drops. A chunk bundles its own copy rather than be handed one, which would
 * bring the package back into the first paint.
 */
function droppedPackages(metafile) {
  const keptBytes = new Map();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const name = packageOf(input);
      if (name) keptBytes.set(name, (keptBytes.get(name) ?? 0) + bytesInOutput);
    }
  }
  const importedFromOutside = new Map();
  for (const [importer, { imports }] of Object.entries(metafile.inputs)) {
    for (const { path } of imports) {
      const name = packageOf(path);
      if (name && packageOf(importer) !== name) importedFromOutside.set(name, [...(importedFromOutside.get(name) ?? []), importer]);
    }
  }
  return new Set(
    [...importedFromOutside].filter(([name, importers]) => (keptBytes.get(name) ?? 0) === 0 && importers.every((importer) => isSharedModule(resolve(root, importer)))).map(([name]) => name),
  );
}

/** Records (or, given the chunks' URLs, points to) each module the dashboard imports with `import()`; esbuild leaves the call as it is. */
function lazyImports(onLazy) {
  const self = {};
  return {
    name: "lazy-imports",
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.kind !== "dynamic-import" || args.pluginData === self) return undefined;
        const resolved = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: self });
        if (resolved.errors.length > 0) return { errors: resolved.errors };
        return { path: onLazy(resolved.path), external: true };
      });
    },
  };
}

/** In the chunks' build: an import of a first-paint module reads the handover instead of bundling the module again. */
function fromFirstPaint(inFirstPaint, handover) {
  const self = {};
  return {
    name: "from-first-paint",
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === self || (args.kind !== "import-statement" && args.kind !== "dynamic-import")) return undefined;
        const resolved = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: self });
        if (resolved.errors.length > 0 || !inFirstPaint.has(resolved.path) || isSharedModule(resolved.path)) return undefined;
        const key = relative(root, resolved.path).split(sep).join("/");
        if (args.kind === "dynamic-import") return { errors: [{ text: `${key} is in the first paint already: import it statically` }] };
        const names = importedNames(await readFile(args.importer, "utf8"), args.importer, args.path);
        if (names.includes("*")) return { errors: [{ text: `a lazily loaded module takes all of ${key} (import * / export *): import the names it uses` }] };
        const wanted = handover.get(key) ?? new Set();
        for (const name of names) wanted.add(name);
        handover.set(key, wanted);
        return { path: `${key}#${names.join(",")}`, namespace: "first-paint", pluginData: { key, names } };
      });
      // One reader of the handover for every chunk (esbuild's splitting puts it in a shared chunk).
      b.onResolve({ filter: /^first-paint:handover$/ }, () => ({ path: "handover", namespace: "first-paint" }));
      b.onLoad({ filter: /^handover$/, namespace: "first-paint" }, () => ({
        contents: [
          `const handover = globalThis[Symbol.for(${JSON.stringify(HANDOVER)})];`,
          "export function handed(key) {",
          "  const module = handover?.[key];",
          "  if (!module) throw new Error(`the dashboard's first paint did not hand over ${key}`);",
          "  return module;",
          "}",
        ].join("\n"),
        loader: "js",
      }));
      b.onLoad({ filter: /#/, namespace: "first-paint" }, ({ pluginData: { key, names } }) => {
        if (names.length === 0) return { contents: "export {};", loader: "js" };
        const take = names.map((name, i) => `h${i} = from[${JSON.stringify(name)}]`).join(", ");
        const give = names.map((name, i) => `h${i} as ${JSON.stringify(name)}`).join(", ");
        return {
          contents: [
            'import { handed } from "first-paint:handover";',
            `const from = handed(${JSON.stringify(key)});`,
            `const ${take};`,
            `export { ${give} };`,
          ].join("\n"),
          loader: "js",
        };
      });
    },
  };
}

/**
 * The value names a module imports (or re-exports) from `specifier`: "default",
 * the named ones, "*" for a namespace; none for an import for its side effects.
 * Read from the module as the bundle sees it (the shared modules' zod import rewritten).
 */
export function importedNames(source, fileName, specifier) {
  const text = SHARED_MODULE.test(fileName) ? namespacedZod(source) : source;
  const kind = /\.[cm]?tsx?$/.test(fileName) ? ts.ScriptKind.TS : ts.ScriptKind.JS;
  const file = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, kind);
  const names = new Set();
  for (const statement of file.statements) {
    const from = (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) && statement.moduleSpecifier;
    if (!from || !ts.isStringLiteral(from) || from.text !== specifier) continue;
    if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      if (!clause || clause.isTypeOnly) continue;
      if (clause.name) names.add("default");
      const bindings = clause.namedBindings;
      if (bindings && ts.isNamespaceImport(bindings)) names.add("*");
      else for (const element of bindings?.elements ?? []) if (!element.isTypeOnly) names.add((element.propertyName ?? element.name).text);
    } else if (!statement.isTypeOnly) {
      const clause = statement.exportClause;
      if (!clause || ts.isNamespaceExport(clause)) names.add("*");
      else for (const element of clause.elements) if (!element.isTypeOnly) names.add((element.propertyName ?? element.name).text);
    }
  }
  return [...names].sort();
}

const byName = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The first paint's entry: the dashboard, then the handover of what the chunks import from it. The chunks' build
 * fills the handover in the order its parallel resolves happen to finish, so the entry sorts it: the same sources
 * then give the same first-paint file and name, and a deploy that changed nothing makes no returning browser fetch
 * it again.
 */
export function firstPaintEntry(main, handover) {
  const lines = [`import ${JSON.stringify(`./${main}`)};`];
  const modules = [];
  [...handover].sort(([a], [b]) => byName(a, b)).forEach(([key, names], m) => {
    if (names.size === 0) return;
    const bindings = [...names].sort(byName).map((name, i) => [name, `m${m}_${i}`]);
    lines.push(`import { ${bindings.map(([name, local]) => `${JSON.stringify(name)} as ${local}`).join(", ")} } from ${JSON.stringify(`./${key}`)};`);
    modules.push(`${JSON.stringify(key)}: Object.freeze({ ${bindings.map(([name, local]) => `${JSON.stringify(name)}: ${local}`).join(", ")} })`);
  });
  if (modules.length > 0) lines.push(`globalThis[Symbol.for(${JSON.stringify(HANDOVER)})] = Object.freeze({ ${modules.join(", ")} });`);
  return lines.join("\n");
}

/**
 * Builds dist/ui (or `outdir`): index.html with the first paint's module
 * inline, its source map, and the lazily loaded pages in chunks/. `entry`
 * (from the repository root) is for tests that build a fixture.
 */
export async function buildUi({ minify = true, outdir = defaultOutdir, entry = "ui/main.ts" } = {}) {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const plugins = [generatedAnswerChecks, ...zodPlugins, ...(minify ? [minifyTemplates] : [])];
  const common = {
    bundle: true,
    format: "esm",
    target: "es2022",
    minify,
    sourcemap: true,
    metafile: true,
    legalComments: "linked",
    tsconfig: `${root}ui/tsconfig.json`,
    absWorkingDir: root,
    logLevel: "warning",
  };
  const firstPaintStdin = (handover) => ({ stdin: { contents: firstPaintEntry(entry, handover), resolveDir: root, sourcefile: "first-paint.js", loader: "js" } });

  const lazy = new Set();
  const survey = await build({
    ...common,
    ...firstPaintStdin(new Map()),
    sourcemap: false,
    write: false,
    outfile: `${outdir}/app.js`,
    plugins: [...plugins, lazyImports((path) => (lazy.add(path), path))],
  });
  const chunks = lazy.size > 0 ? await buildLazyChunks({ common, plugins, outdir, firstPaint: survey, lazy }) : null;
  const firstPaint = await build({
    ...common,
    ...firstPaintStdin(chunks?.handover ?? new Map()),
    outfile: `${outdir}/app.js`,
    plugins: [...plugins, lazyImports((path) => chunks.urls.get(path))],
  });

  const page = await readFile(`${root}ui/index.html`, "utf8");
  const appJs = await readFile(`${outdir}/app.js`, "utf8");
  const html = inlineModule(page, appJs);
  await writeFile(`${outdir}/index.html`, html);
  await writeFleetPage(outdir, page, appJs);
  await rm(`${outdir}/app.js`);
  const chunkJs = await Promise.all((await lazyChunks(outdir)).map((chunk) => readFile(`${outdir}${chunk.url}`, "utf8")));
  await writeFile(`${outdir}/${HEADERS_FILE}`, headersFile(html, chunkJs));
  return { firstPaint, chunks: chunks?.result ?? null };
}

/** The static assets' headers file (Workers Static Assets read it and do not serve it; docs/operations.md#security-headers). */
export const HEADERS_FILE = "_headers";

const sha256 = (text) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

/**
 * The page's Content-Security-Policy: only the dashboard's own code and
 * styles run. The inline module and the inline <style> (both in index.html
 * so the first paint is one round trip) are allowed by their hashes, taken
 * from the built page itself, so a rebuild cannot drift from its policy; the
 * chunks load from 'self'. Lit's `static styles` are constructed style sheets
 * (adoptedStyleSheets), which CSP does not govern. A static style="…" in a Lit
 * template is parsed where CSP does apply, so each one found in the shipped
 * code is allowed by its hash ('unsafe-hashes' lets hashes match attributes);
 * a bound style=${…} would be set at run time and refused, so the build
 * refuses it first (a class, or styleMap, which sets properties through the
 * CSSOM, does the same job). The event socket is connect-src 'self': CSP
 * Level 3 has 'self' match ws: and wss: on the page's own host (Chromium
 * does, test/browser/security-headers.test.ts).
 */
export function contentSecurityPolicy(html, chunkJs = []) {
  const inline = (tag) => [...html.matchAll(new RegExp(`<${tag}\\b([^>]*)>([\\s\\S]*?)</${tag}>`, "gi"))].filter((m) => !/\bsrc=/i.test(m[1])).map((m) => m[2]);
  const scripts = inline("script");
  const code = [html, ...scripts, ...chunkJs];
  for (const text of code) {
    if (/\sstyle=\$\{/.test(text)) throw new Error("build-ui: a bound style=${…} attribute would be refused by the Content-Security-Policy; use a class or styleMap");
  }
  const styleAttributes = new Set(code.flatMap((text) => [...text.matchAll(/\sstyle="([^"]*)"/g)].map((m) => m[1])));
  const styles = [...inline("style").map(sha256), ...(styleAttributes.size > 0 ? ["'unsafe-hashes'", ...[...styleAttributes].sort().map(sha256)] : [])];
  return [
    "default-src 'none'",
    `script-src 'self' ${scripts.map(sha256).join(" ")}`.trim(),
    styles.length > 0 ? `style-src ${styles.join(" ")}` : "style-src 'none'",
    // The favicon is a data: URL; the dashboard shows no other image.
    "img-src data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join("; ");
}

/**
 * Every static asset answer: the page (at / and, as the single-page
 * fallback, at every dashboard path), its source map and legal notes, and
 * the chunks. The Worker's answers (the API, and the chunks it serves from
 * the assets) get the same headers but a CSP of their own from Hono's
 * secureHeaders in worker/index.ts; test/worker/security-headers.test.ts
 * holds the two together.
 */
export function headersFile(html, chunkJs = []) {
  return [
    "# Written by scripts/build-ui.mjs from the built page: edit the script, not this file.",
    "/*",
    `  Content-Security-Policy: ${contentSecurityPolicy(html, chunkJs)}`,
    ...Object.entries(STATIC_SECURITY_HEADERS).map(([name, value]) => `  ${name}: ${value}`),
    "",
  ].join("\n");
}

/** The headers besides the CSP, the same on the Worker's answers (worker/index.ts). */
const STATIC_SECURITY_HEADERS = {
  // For browsers without CSP's frame-ancestors: nobody may frame the dashboard and click its buttons for a user.
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  // The dashboard's URLs name hosts and its origin may be internal: links out (GitHub) carry no referrer at all.
  "Referrer-Policy": "no-referrer",
  // A page that opened the dashboard (or that it opened) gets no handle on its window.
  "Cross-Origin-Opener-Policy": "same-origin",
  "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildUi();
  console.log(`built ${defaultOutdir}`);
}
