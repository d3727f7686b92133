import type { BuildResult, Plugin } from "esbuild";

/** Builds the dashboard into dist/ui (or `outdir`): app.js, its source map and index.html. */
export function buildUi(options?: { minify?: boolean; outdir?: string }): Promise<BuildResult<{ metafile: true }>>;
/** Collapses the CSS of a css`` template. */
export function minifyCss(text: string): string;
/** Collapses whitespace in the static parts of html`` templates in a source file. */
export function minifyHtmlTemplates(source: string): string;
/** Replaces zod's JSON Schema modules with stubs that throw: the bundles only parse. */
export const zodWithoutJsonSchema: Plugin;
