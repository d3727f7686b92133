// Only the two promise rules: they keep the coordinator's no-await rule honest (a step cannot hand a
// promise to a caller that drops it) and catch async callbacks passed where nothing awaits them.
// Type checks stay with `tsc` (npm run typecheck); style is not linted.
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  {
    ignores: ["**/node_modules/**", "dist/**", ".wrangler/**", "test/.artifacts/**", "worker/worker-configuration.d.ts"],
  },
  {
    files: ["**/*.ts"],
    // The code's few directives name rules this config does not run (no-control-regex, for editors'
    // default rule sets): they are not stale, so they are not reported.
    linterOptions: { reportUnusedDisableDirectives: "off" },
    languageOptions: {
      parser: tseslint.parser,
      // Each file is checked with the nearest tsconfig.json, the same projects `npm run typecheck` runs.
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@typescript-eslint": tseslint.plugin },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
    },
  },
);
