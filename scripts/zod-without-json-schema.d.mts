import type { Plugin } from "esbuild";

/** Replaces zod's JSON Schema modules with stubs that throw, and its English messages with short ones: the bundles only parse. */
export const zodWithoutJsonSchema: Plugin;
