// Validators for the answers the first table waits for, generated from their zod schemas (ui/data/answer-checks.ts).
import { validator } from "@exodus/schemasafe";
import * as z from "zod";

/**
 * The answers checked without zod, by the name ui/data/answer-checks.ts exports them under, with their
 * schemas in ui/data/schemas.ts.
 */
export const CHECKED_ANSWERS = { fleet: "FleetResponse", health: "HealthResponse", me: "MeResponse" };

/**
 * The JSON Schema of what `schema` outputs: every defaulted field required, no key it does not name
 * (zod's output side). An answer that passes it is one zod parses to the same value, unchanged, since
 * the dashboard's schemas have no transforms: nothing to default, nothing to strip. One that does not is
 * zod's to judge.
 */
export function outputJsonSchema(schema) {
  return z.toJSONSchema(schema, { io: "output", unrepresentable: "throw", target: "draft-2020-12", reused: "ref" });
}

/**
 * The source of an ES module exporting `answerChecks`: a validator per checked answer, compiled ahead of
 * time by @exodus/schemasafe into plain code (no eval at run time, so within the page's
 * Content-Security-Policy), each returning true only for an answer zod would return unchanged.
 */
export async function answerChecksSource() {
  const schemas = await import("../ui/data/schemas.ts");
  const modules = Object.entries(CHECKED_ANSWERS).map(([name, schemaName]) => {
    const validate = validator(outputJsonSchema(schemas[schemaName]), {
      mode: "default",
      isJSON: true,
      includeErrors: false,
      allErrors: false,
      // zod's string formats are patterns, which the JSON Schema carries beside each format.
      formatAssertion: false,
      allowUnusedKeywords: false,
    });
    // Lengths are counted in code points, as zod counts them.
    return `const ${name} = ${validate.toModule().trim().replace(/;$/, "")};`;
  });
  const checks = Object.keys(CHECKED_ANSWERS).map((name) => `${name}: (json) => ${name}(json) === true`);
  return `${modules.join("\n")}\nexport const answerChecks = { ${checks.join(", ")} };\n`;
}
