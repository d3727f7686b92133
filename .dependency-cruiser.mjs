// Who may import whom (docs/architecture.md has the layout). `npm run lint` checks these; a rule that
// fires names the edge to remove. Type-only imports count: a type pulled across a boundary couples the
// two sides as much as a value does.
const RUNTIME_LAYERS = "^(worker|agent|common|ui)/";

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: "no-cycles",
      severity: "error",
      comment: "No import cycles in worker/, agent/ or common/: a cycle makes two modules one, in two files.",
      from: { path: "^(worker|agent|common)/" },
      to: { circular: true },
    },
    {
      name: "resolvable",
      severity: "error",
      comment:
        "Every relative import resolves to a file. This also proves the cruise sees the `.ts` specifiers; " +
        "if it could not resolve them, every other rule would pass for want of edges.",
      from: { path: RUNTIME_LAYERS },
      to: { couldNotResolve: true, pathNot: "^cloudflare:" },
    },
    {
      name: "common-stands-alone",
      severity: "error",
      comment:
        "common/ is shared by the Worker, the agent and the dashboard: it imports only common/ and the " +
        "packages in `dependencies` (zod, semver), no Node built-in and no other folder.",
      from: { path: "^common/" },
      to: { pathNot: "^common/", dependencyTypesNot: ["npm"] },
    },
    {
      name: "agent-stands-alone",
      severity: "error",
      comment: "The agent runs on the host: it shares only common/ with the Worker and the dashboard.",
      from: { path: "^agent/" },
      to: { path: "^(worker|ui)/" },
    },
    {
      name: "ui-stands-alone",
      severity: "error",
      comment: "The dashboard talks to the Worker over HTTP only: it shares only common/.",
      from: { path: "^ui/" },
      to: { path: "^(worker|agent)/" },
    },
    {
      name: "worker-stands-alone",
      severity: "error",
      comment: "The Worker shares only common/ with the agent and the dashboard.",
      from: { path: "^worker/" },
      to: { path: "^(agent|ui)/" },
    },
    {
      name: "github-is-an-adapter",
      severity: "error",
      comment:
        "worker/github/ is an adapter to GitHub: it may use the storage layer (worker/db/, the GitHub " +
        "mirror tables; not a Durable Object's own storage), the bindings (env.ts) and the one error " +
        "vocabulary, never a feature (routes, objects, commands, rollouts, fleet builds, automation, " +
        "update PRs, notifications...). Features call it, not the other way round.",
      from: { path: "^worker/github/" },
      to: {
        path: "^worker/",
        pathNot: ["^worker/github/", "^worker/db/(?![^/]*-storage\\.ts$)", "^worker/(env|errors|outcome)\\.ts$"],
      },
    },
    {
      name: "components-no-object",
      severity: "error",
      comment:
        "The coordinator's components see the object only through their narrow host slice: none imports " +
        "from worker/objects/ (not even a type), so none can reach a Durable Object class.",
      from: { path: "^worker/coordinator/" },
      to: { path: "^worker/objects/" },
    },
  ],
  options: {
    // The cruise starts from the folders `npm run lint` names; tests and tools are not layered.
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^worker/worker-configuration\\.d\\.ts$" },
    tsPreCompilationDeps: true,
    // Resolution as tsc does it (moduleResolution Bundler, allowImportingTsExtensions: `./x.ts` specifiers).
    tsConfig: { fileName: "tsconfig.base.json" },
    // Package subpaths (hono/http-exception) resolve through their `exports` maps.
    enhancedResolveOptions: {
      extensions: [".ts", ".d.ts", ".js", ".mjs", ".json"],
      exportsFields: ["exports"],
      conditionNames: ["import", "types", "workerd", "node", "default"],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
