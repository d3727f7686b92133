/**
 * The Settings page's rules, pure: the field a zod issue belongs to, the client-side check with the
 * server's own schema, and a new channel's id.
 */
import type * as z from "zod";
import { SettingsUpdate, type ErrorIssue, type Settings } from "../../common/protocol.ts";
import { pluralWord } from "../../common/text.ts";

/** Field messages by path ("rollout.canary", "windows.0.end", "notifications.1.url"); "" is the whole object. */
export type FieldErrors = Record<string, string>;

export const pathKey = (path: readonly (string | number)[]): string => path.join(".");

/** Issues as field messages: the first message for a path wins (zod lists the most basic problem first). */
export function fieldErrors(issues: readonly ErrorIssue[]): FieldErrors {
  const errors: FieldErrors = {};
  for (const issue of issues) {
    const key = pathKey(issue.path);
    errors[key] ??= issue.message;
  }
  return errors;
}

/** The draft checked with the schema the server uses: no errors means it may be sent. */
export function validateSettings(draft: Settings): FieldErrors {
  const parsed = SettingsUpdate.safeParse(draft);
  if (parsed.success) return {};
  return fieldErrors(parsed.error.issues.map((issue) => ({ path: issue.path.filter((p) => typeof p !== "symbol"), message: issueMessage(issue) })));
}

/** zod's own messages ("Too small: …", or "too small" without a locale), as opposed to the schema's. */
const GENERIC = /^(too (small|big)|invalid|unrecognized)/i;

/**
 * A person's words for the issues a form field meets most; the dashboard's zod carries no locale (its
 * generic messages are "too small"), and the schema's own messages (time zones, windows) pass through.
 */
export function issueMessage(issue: z.core.$ZodIssue): string {
  if (!GENERIC.test(issue.message)) return issue.message;
  if (issue.code === "too_small" && issue.origin === "number") return `must be at least ${String(issue.minimum)}`;
  if (issue.code === "too_big" && issue.origin === "number") return `must be at most ${String(issue.maximum)}`;
  if (issue.code === "too_small" && issue.origin === "array") return issue.minimum === 1 ? "choose at least one" : `choose at least ${String(issue.minimum)}`;
  if (issue.code === "invalid_type" && issue.expected === "number") return "enter a number";
  if (issue.code === "invalid_type" && issue.expected === "int") return "enter a whole number";
  if (issue.code === "invalid_format" && issue.format === "url") return "not an http(s) URL";
  if (issue.code === "unrecognized_keys") return `unknown ${pluralWord(issue.keys.length, "setting")}: ${issue.keys.join(", ")}`;
  return issue.message;
}

/** Messages under `prefix` ("windows.0"), keyed by the rest of their path ("end"), for a row's own element. */
export function errorsUnder(errors: FieldErrors, prefix: string): FieldErrors {
  const out: FieldErrors = {};
  for (const [key, message] of Object.entries(errors)) {
    if (key === prefix) out[""] = message;
    else if (key.startsWith(`${prefix}.`)) out[key.slice(prefix.length + 1)] = message;
  }
  return out;
}

/** A fresh channel id (`ch_…`), made in the browser so a new channel's secrets and deliveries have a name at once. */
export function newChannelId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return `ch_${btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")}`;
}

/** "hsb0, csb1" → ["hsb0", "csb1"]; blank → undefined (the window applies to every host no window names). */
export function parseHostList(text: string): string[] | undefined {
  const names = text.split(/[\s,]+/).filter((name) => name !== "");
  return names.length === 0 ? undefined : names;
}

/** `fleetBuild.builders` as the Settings page's text: one `SYSTEM=HOST` a line. */
export const buildersText = (builders: Settings["fleetBuild"]["builders"]): string => builders.map((b) => `${b.system}=${b.host}`).join("\n");

/** The text back as builders; a line without `=` keeps its words as the system, so the schema names what is missing. */
export function parseBuildersText(text: string): Settings["fleetBuild"]["builders"] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .map((line) => {
      const at = line.indexOf("=");
      return at < 0 ? { system: line, host: "" } : { system: line.slice(0, at).trim(), host: line.slice(at + 1).trim() };
    });
}
