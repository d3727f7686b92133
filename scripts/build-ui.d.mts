import type { BuildResult, Plugin } from "esbuild";

/**
 * Builds the dashboard into dist/ui (or `outdir`): index.html with the first paint's module inline, its source map,
 * and the lazily loaded pages in chunks/ (`chunks` is null when nothing is imported lazily). `entry` (from the
 * repository root, default ui/main.ts) is for tests that build a fixture.
 */
export function buildUi(options?: {
  minify?: boolean;
  outdir?: string;
  entry?: string;
}): Promise<{ firstPaint: BuildResult<{ metafile: true }>; chunks: BuildResult<{ metafile: true }> | null }>;
/** The JavaScript of the first paint from `outdir` (default dist/ui): the page's inline modules and any .js file beside it. */
export function shippedJs(outdir?: string): Promise<string[]>;
/** The lazily loaded chunks in `outdir`/chunks, each with its URL and sizes, largest first. */
export function lazyChunks(outdir?: string): Promise<{ url: string; bytes: number; gzipBytes: number }[]>;
/** The first paint's entry module: `main`, then the handover (module path → names the chunks import), in a stable order. */
export function firstPaintEntry(main: string, handover: Map<string, Set<string>>): string;
/** The value names a module imports from `specifier`: "default", the named ones, "*" for a namespace; none for a side-effect import. */
export function importedNames(source: string, fileName: string, specifier: string): string[];
/** Collapses the CSS of a css`` template. */
export function minifyCss(text: string): string;
/** Collapses whitespace in the static parts of html`` templates in a source file. */
export function minifyHtmlTemplates(source: string): string;
/** Wraps each top-level `const X = z.…` in a pure IIFE, so an unused schema can be dropped. */
export function markSchemasPure(source: string, fileName?: string): string;
/** What the browser bundle does to zod and the shared modules. */
export const zodPlugins: Plugin[];
/** Replaces zod's JSON Schema modules with stubs that throw: the bundles only parse. */
export const zodWithoutJsonSchema: Plugin;
/** The name of the static assets' headers file the build writes into `outdir`. */
export const HEADERS_FILE: string;
/** The page's Content-Security-Policy: its inline scripts and styles, and the static style attributes of `chunkJs` and the page, by their sha256. */
export function contentSecurityPolicy(html: string, chunkJs?: string[]): string;
/** The `_headers` file: one `/*` rule with the CSP and the other security headers. */
export function headersFile(html: string, chunkJs?: string[]): string;
