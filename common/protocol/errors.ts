import * as z from "zod";

// ---------------------------------------------------------------------------
// Errors

/** Where in a request body a problem is: zod's issue path, for a form to show the message beside its field. */
export const ErrorIssue = z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string() });
export type ErrorIssue = z.infer<typeof ErrorIssue>;

export const ErrorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), issues: z.array(ErrorIssue).optional() }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;
