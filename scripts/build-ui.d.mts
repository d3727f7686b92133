import type { BuildResult, Plugin } from "esbuild";

/** Builds the dashboard into dist/ui (or `outdir`): index.html with the dashboard's module inline, and its source map. */
export function buildUi(options?: { minify?: boolean; outdir?: string }): Promise<BuildResult<{ metafile: true }>>;
/** The JavaScript a browser is sent from `outdir` (default dist/ui): the page's inline modules and any .js file. */
export function shippedJs(outdir?: string): Promise<string[]>;
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
