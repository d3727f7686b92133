/**
 * The validators the browser's first paint uses instead of zod (scripts/answer-checks.mjs, generated from
 * ui/data/schemas.ts): an answer they accept is one zod parses to the same value, on the answers the
 * control plane sends and on any mutation of them; what they refuse goes to zod.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answerChecksSource } from "../../scripts/answer-checks.mjs";
import type { AnswerChecks } from "../../ui/data/answer-checks.ts";
import { FleetResponse, HealthResponse, MeResponse } from "../../ui/data/schemas.ts";
import { buildCommand, buildRepoState, buildReport, buildUpdatePr } from "../compartments/builders.ts";
import { compartment, fleetBuild, hostView } from "./fixtures.ts";

let dir = "";
let checks: Required<AnswerChecks>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nixfleet-answer-checks-"));
  const file = join(dir, "answer-checks.mjs");
  await writeFile(file, await answerChecksSource());
  ({ answerChecks: checks } = (await import(pathToFileURL(file).href)) as { answerChecks: Required<AnswerChecks> });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** As the Worker sends them: every kind of row, a report from an agent, a command running, a hold, a rollout, update PRs with a fleet build. */
function fleetAnswers(): unknown[] {
  const report = buildReport({ hostname: "web1" });
  const hosts = [
    hostView("db1"),
    hostView("web1", {
      online: true,
      lastSeenAt: "2025-12-01T10:05:00.000Z",
      report,
      reportedAt: "2025-12-01T10:05:00.000Z",
      activeCommand: buildCommand({ host: "web1", kind: "switch", state: "running" }),
      diskLow: "disk low: /boot 38 MiB free",
      states: { git: compartment("yellow", { reason: "behind main by 2 commits", stale: true }), tests: compartment("red") },
    }),
    hostView("mac1", {
      platform: "darwin",
      hold: { reason: "kernel upgrade next week", until: null, by: "alice@example.com", at: "2025-12-01T09:00:00.000Z" },
      rollout: { id: "ro_1", state: "soaking", wave: 2 },
    }),
  ];
  const pr = buildUpdatePr();
  const withBuild = { ...pr, number: 43, fleetBuild: fleetBuild([{ name: "web1", state: "built" }, { name: "db1", state: "failed", reason: "evaluation failed" }]) };
  const answers = [
    { hosts: [], summary: {}, repo: null, updatePrs: [] },
    { hosts, summary: { git: { yellow: 1, gray: 2 }, tests: { red: 1 } }, repo: buildRepoState(), updatePrs: [pr, withBuild] },
  ];
  // Through JSON, as over the wire: zod's output, serialised.
  return answers.map((answer) => JSON.parse(JSON.stringify(FleetResponse.parse(answer))));
}

const healthAnswer = { ok: true, version: "0.1.0", protocol: 1, auth: "access" };

/** zod's verdict: the value it returns, or null when it refuses. */
const zodFleet = (json: unknown) => {
  const parsed = FleetResponse.safeParse(json);
  return parsed.success ? parsed.data : null;
};

describe("the first paint's checks of the fleet, health and identity answers", () => {
  it("accept the answers the control plane sends, which zod returns unchanged", () => {
    const answers = fleetAnswers();
    expect(answers).toHaveLength(2);
    for (const answer of answers) {
      expect(checks.fleet(answer)).toBe(true);
      expect(zodFleet(answer)).toEqual(answer);
    }
    expect(checks.health(healthAnswer)).toBe(true);
    expect(checks.health({ ok: true, version: "0.1.0", protocol: 1 })).toBe(true);
    for (const role of ["viewer", "operator", "admin"]) expect(checks.me({ actor: `${role}@example.com`, role })).toBe(true);
  });

  it("leave to zod an answer zod would change or refuse: a defaulted field missing, an unknown key, a wrong type, a string too long (in code points, as zod counts)", () => {
    const [, answer] = fleetAnswers() as [unknown, { hosts: Record<string, unknown>[] }];
    const copy = () => structuredClone(answer) as { hosts: Record<string, unknown>[] & { report?: unknown }[] };

    const defaulted = copy();
    delete defaulted.hosts[0]!.diskLow;
    expect(zodFleet(defaulted)?.hosts[0]?.diskLow).toBeNull();
    expect(checks.fleet(defaulted)).toBe(false);

    const unknownKey = copy();
    unknownKey.hosts[0]!.colour = "blue";
    expect(zodFleet(unknownKey)?.hosts[0]).not.toHaveProperty("colour");
    expect(checks.fleet(unknownKey)).toBe(false);

    const wrongType = copy();
    wrongType.hosts[1]!.online = "yes";
    expect(zodFleet(wrongType)).toBeNull();
    expect(checks.fleet(wrongType)).toBe(false);

    // Lengths in code points, as zod counts them: 253 emoji (506 UTF-16 units) are a hostname, 254 are not.
    const longest = copy();
    (longest.hosts[1]!.report as { hostname: string }).hostname = "😀".repeat(253);
    expect(zodFleet(longest)).toEqual(longest);
    expect(checks.fleet(longest)).toBe(true);
    const tooLong = copy();
    (tooLong.hosts[1]!.report as { hostname: string }).hostname = "😀".repeat(254);
    expect(zodFleet(tooLong)).toBeNull();
    expect(checks.fleet(tooLong)).toBe(false);

    expect(checks.health({ ok: "yes", version: "0.1.0", protocol: 1 })).toBe(false);
    expect(checks.health({ ok: true, version: "0.1.0", protocol: 1.5 })).toBe(false);
  });

  it("accept a mutated answer only when zod parses it to the same value", () => {
    const answers = fleetAnswers();
    const paths = (value: unknown, at: (string | number)[] = []): (string | number)[][] =>
      typeof value === "object" && value !== null
        ? [at, ...Object.entries(value).flatMap(([key, child]) => paths(child, [...at, Array.isArray(value) ? Number(key) : key]))]
        : [at];
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(
        fc.nat({ max: answers.length - 1 }),
        fc.nat(),
        fc.oneof(
          fc.constant<"delete">("delete"),
          fc.record({ set: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.string({ unit: "grapheme", maxLength: 300 }), fc.constantFrom(null, "", 0, -1, 1.5, true)) }),
          fc.record({ add: fc.string({ minLength: 1, maxLength: 8 }) }),
        ),
        (which, pick, change) => {
          const answer = structuredClone(answers[which]) as Record<string | number, unknown>;
          const all = paths(answer).filter((path) => path.length > 0);
          const path = all[pick % all.length]!;
          const parent = path.slice(0, -1).reduce<Record<string | number, unknown>>((node, key) => node[key] as Record<string | number, unknown>, answer);
          const key = path[path.length - 1]!;
          if (change === "delete") delete parent[key];
          else if ("set" in change) parent[key] = change.set;
          else if (typeof parent[key] === "object" && parent[key] !== null && !Array.isArray(parent[key])) (parent[key] as Record<string, unknown>)[change.add] = 1;
          // Through JSON, as the checks only ever see it (an array's deleted element arrives as null).
          const json = JSON.parse(JSON.stringify(answer)) as unknown;
          if (!checks.fleet(json)) {
            refused += 1;
            return;
          }
          accepted += 1;
          expect(zodFleet(json)).toEqual(json);
        },
      ),
      { numRuns: 400 },
    );
    // Both sides were tried: mutations the checks let through (a reason reworded) and ones they left to zod.
    expect(accepted).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });

  it("accept an identity answer only when zod parses it to the same value", () => {
    expect(checks.me({ actor: "x@example.com", role: "root" })).toBe(false);
    expect(checks.me({ actor: "x@example.com", role: "viewer", extra: 1 })).toBe(false);
    fc.assert(
      fc.property(
        fc.record(
          { actor: fc.oneof(fc.string(), fc.jsonValue()), role: fc.oneof(fc.constantFrom("viewer", "operator", "admin"), fc.jsonValue()) },
          { requiredKeys: [] },
        ),
        (answer) => {
          const json = JSON.parse(JSON.stringify(answer)) as unknown;
          if (checks.me(json)) expect(MeResponse.parse(json)).toEqual(json);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("accept a health answer only when zod parses it to the same value", () => {
    fc.assert(
      fc.property(fc.record({ ok: fc.jsonValue(), version: fc.jsonValue(), protocol: fc.jsonValue(), auth: fc.option(fc.jsonValue(), { nil: undefined }) }, { requiredKeys: [] }), (answer) => {
        const json = JSON.parse(JSON.stringify(answer)) as unknown;
        if (checks.health(json)) expect(HealthResponse.parse(json)).toEqual(json);
      }),
      { numRuns: 300 },
    );
  });
});
