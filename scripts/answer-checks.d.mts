import type { ZodType } from "zod";

/** The answers the first paint checks without zod, by name, with their schemas' names in ui/data/schemas.ts. */
export const CHECKED_ANSWERS: Record<string, string>;
/** The JSON Schema of what `schema` outputs (every defaulted field required, no unnamed key). */
export function outputJsonSchema(schema: ZodType): Record<string, unknown>;
/** The source of the ES module exporting `answerChecks`, generated from the zod schemas. */
export function answerChecksSource(): Promise<string>;
