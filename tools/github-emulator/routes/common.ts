import type { Context } from "hono";
import type { z } from "zod";
import { GitHubApiError, validationFailed, type ValidationErrorItem } from "../errors.ts";
import type { EmulatedRepository } from "../repository.ts";

/** Hono context variables every route sees. */
export interface AppEnv {
  Variables: { repository: EmulatedRepository };
}

export type AppContext = Context<AppEnv>;

const JSON_TYPE = "application/json; charset=utf-8";

/** A JSON answer with GitHub's content type. */
export function json(c: AppContext, data: unknown, status = 200): Response {
  return c.body(JSON.stringify(data), status as 200, { "content-type": JSON_TYPE });
}

/**
 * Parses a request body the way GitHub does: malformed JSON is 400 "Problems parsing JSON",
 * a body that does not fit the endpoint is 422 "Validation Failed".
 */
export async function readBody<T extends z.ZodType>(c: AppContext, schema: T, resource: string): Promise<z.infer<T>> {
  const text = await c.req.text();
  let data: unknown = {};
  if (text.trim().length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      throw new GitHubApiError(400, "Problems parsing JSON");
    }
  }
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  const errors: ValidationErrorItem[] = parsed.error.issues.map((issue) => ({
    resource,
    field: issue.path.map(String).join(".") || undefined,
    code: issue.code === "invalid_type" && issue.input === undefined ? "missing_field" : "invalid",
  }));
  throw validationFailed(errors);
}

/** Reads `per_page` / `page`, answers one page and GitHub's `Link` header. */
export function paginate<T>(c: AppContext, items: T[]): T[] {
  const perPage = Math.min(100, Math.max(1, Number(c.req.query("per_page") ?? 30) || 30));
  const page = Math.max(1, Number(c.req.query("page") ?? 1) || 1);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (n: number): string => {
    const url = new URL(c.req.url);
    url.searchParams.set("per_page", String(perPage));
    url.searchParams.set("page", String(n));
    return `<${url.toString()}>`;
  };
  const links: string[] = [];
  if (page > 1) links.push(`${link(page - 1)}; rel="prev"`);
  if (page < last) links.push(`${link(page + 1)}; rel="next"`, `${link(last)}; rel="last"`);
  if (page > 1) links.push(`${link(1)}; rel="first"`);
  if (links.length > 0) c.header("link", links.join(", "));
  return items.slice((page - 1) * perPage, page * perPage);
}

export function pullNumber(c: AppContext): number {
  const raw = c.req.param("number") ?? "";
  if (!/^\d+$/.test(raw)) throw new GitHubApiError(404, "Not Found");
  return Number(raw);
}

/** Base64 the way the contents and blobs APIs print it: wrapped at 60 columns. */
export function wrappedBase64(bytes: Buffer): string {
  const flat = bytes.toString("base64");
  const lines = flat.match(/.{1,60}/g) ?? [];
  return lines.map((l) => `${l}\n`).join("");
}
