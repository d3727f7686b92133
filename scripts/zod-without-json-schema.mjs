// An esbuild plugin shared by the dashboard and agent bundles.
import { readFile } from "node:fs/promises";

/**
 * zod 4's classic schemas wire a JSON Schema converter into every schema
 * constructor, so no bundler can drop it (~5 KB gzip), though the dashboard
 * only parses. In the browser bundle those two modules become stubs that
 * throw if anything ever asks for JSON Schema. Every export keeps its name,
 * so a zod upgrade that imports something new fails this build loudly.
 *
 * Its English messages (~1 KB gzip of words for every format and size) are
 * replaced too: the dashboard's own schemas carry their messages, and an
 * answer the dashboard cannot read is reported with its path and the code.
 * The agent's bundle uses it too (scripts/build-agent.mjs), which is why it
 * lives apart from build-ui.mjs: the Nix package builds the agent without TypeScript.
 */
export const zodWithoutJsonSchema = {
  name: "zod-without-json-schema",
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]core[\\/](json-schema-processors|to-json-schema)\.js$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const names = [
        ...[...source.matchAll(/^export (?:const|function|let|class) (\w+)/gm)].map((m) => m[1]),
        ...[...source.matchAll(/^export \{([^}]*)\}/gm)].flatMap((m) => m[1].split(",").map((part) => part.trim().split(/\s+as\s+/).at(-1))),
      ].filter(Boolean);
      const unique = [...new Set(names)];
      return {
        contents: `function stub() { throw new Error("zod JSON Schema is not in this bundle"); }\nexport { ${unique.map((name) => `stub as ${name}`).join(", ")} };`,
        loader: "js",
      };
    });
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]en\.js$/ }, () => ({
      contents: `export default function () {
  return {
    localeError: (issue) =>
      issue.code === "invalid_type" ? \`expected \${issue.expected}\` : issue.code === "invalid_value" ? \`expected \${issue.values.join(" | ")}\` : issue.code.replace(/_/g, " "),
  };
}`,
      loader: "js",
    }));
  },
};
