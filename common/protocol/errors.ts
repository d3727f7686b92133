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

/**
 * Every answer of the Worker's carries this header (value "1"), its refusals included, so a client can tell
 * them from the answers of something in front of it: Cloudflare Access's login redirect, a proxy's 404.
 */
export const WORKER_MARKER_HEADER = "x-nixfleet";
