/**
 * Checks that spare the first table zod: its bundle, the building of its schemas and its parse of the
 * fleet answer. Each returns true only for an answer zod would parse to the same value, unchanged (the
 * output side of its schema in ui/data/schemas.ts); anything else goes to zod, which judges it and names
 * what is wrong. Here, in the repository, there are none, so every answer goes to zod: the browser's
 * bundle gets this module generated from the same schemas by scripts/answer-checks.mjs
 * (test/ui/answer-checks.test.ts holds the generated checks to zod).
 */
export interface AnswerChecks {
  fleet?: (json: unknown) => boolean;
  health?: (json: unknown) => boolean;
  me?: (json: unknown) => boolean;
}

export const answerChecks: AnswerChecks = {};
