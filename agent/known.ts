/**
 * A value read from the host, or why it could not be read: the report never
 * guesses and never throws, so `status` works on any machine.
 */
import { describeFailure, type HostRunner } from "./runner.ts";

export type Known<T> = { value: T; reason?: undefined } | { value: null; reason: string };

export const known = <T>(value: T): Known<T> => ({ value });
export const unknown = (reason: string): Known<never> => ({ value: null, reason: reason.slice(0, 500) });

/** The first line a command prints (a version, say), or why there is none. */
export async function readCommandLine(runner: HostRunner, argv: string[], what: string): Promise<Known<string>> {
  const result = await runner.run(argv);
  const first = result.stdout.trim().split("\n")[0]?.trim() ?? "";
  if (result.exitCode === 0 && first !== "") return known(first.slice(0, 100));
  return unknown(describeFailure(what, result));
}
