/** One entry of a 422 "Validation Failed" answer's `errors` array. */
export interface ValidationErrorItem {
  resource: string;
  code: "missing" | "missing_field" | "invalid" | "already_exists" | "unprocessable" | "custom";
  field?: string;
  message?: string;
}

export const DOCS = "https://docs.github.com/rest";

/**
 * An error the REST API answers with, in GitHub's shape:
 * `{ "message", "documentation_url", "status", "errors"? }`.
 * The emulator's own methods throw it too, so tests see the same reason a client would.
 */
export class GitHubApiError extends Error {
  readonly status: number;
  readonly documentationUrl: string;
  readonly errors: ValidationErrorItem[] | undefined;

  constructor(status: number, message: string, options: { documentationUrl?: string; errors?: ValidationErrorItem[] } = {}) {
    super(message);
    this.name = "GitHubApiError";
    this.status = status;
    this.documentationUrl = options.documentationUrl ?? DOCS;
    this.errors = options.errors;
  }

  toJSON(): Record<string, unknown> {
    const body: Record<string, unknown> = { message: this.message };
    if (this.errors) body.errors = this.errors;
    body.documentation_url = this.documentationUrl;
    body.status = String(this.status);
    return body;
  }
}

export const notFound = (documentationUrl?: string): GitHubApiError =>
  new GitHubApiError(404, "Not Found", { documentationUrl });

export const validationFailed = (errors: ValidationErrorItem[], documentationUrl?: string): GitHubApiError =>
  new GitHubApiError(422, "Validation Failed", { errors, documentationUrl });
