/**
 * The ten common scenarios of the compartments: each picture, built from the inputs a real host
 * and repository produce in that situation, gives exactly the five colours and the action the rules
 * promise (see docs/compartments.md "Precedence per compartment").
 */
import { describe, expect, it } from "vitest";
import type { CompartmentInputs } from "../../common/compartments.ts";
import type { Compartments } from "../../common/protocol.ts";
import { buildCommand, buildTestRun, buildUpdatePr, hoursAgo, minutesAgo } from "./builders.ts";
import {
  B,
  COMMIT,
  G,
  PR42_CHANGES,
  R,
  SYSTEM,
  Y,
  colours,
  compute,
  hostReport,
  hsb0,
  type Colours,
} from "./world.ts";

interface Scenario {
  name: string;
  inputs: CompartmentInputs;
  expected: Colours;
  /** The spec's "Action" line, checked against the compartments. */
  action: (computed: Compartments) => void;
}

const pulled = buildCommand({ kind: "pull", state: "succeeded", createdAt: minutesAgo(30) });

const scenarios: Scenario[] = [
  {
    name: "1 everything current: nothing to do",
    inputs: hsb0("lockA", "lockA", "lockA"),
    expected: [G, G, G, G, G],
    action: (c) => {
      expect([c.agent, c.git, c.lock, c.system, c.tests].map((x) => x.action)).toEqual([null, null, null, null, null]);
    },
  },
  {
    name: "2 config updated on GitHub: Git → Pull",
    // Someone pushed a config change; the flake.lock on main did not change.
    inputs: hsb0("lockA", "lockA", "config"),
    expected: [G, Y, G, G, G],
    action: (c) => {
      expect(c.git.action).toBe("pull");
      expect(c.git.reason).toBe(`behind main: ${COMMIT.lockA.slice(0, 7)} → ${COMMIT.config.slice(0, 7)}`);
    },
  },
  {
    name: "3 after pull: System → Switch",
    inputs: hsb0("config", "lockA", "config", { commands: [pulled] }),
    expected: [G, G, G, Y, G],
    action: (c) => {
      expect(c.system.action).toBe("switch");
      expect(c.system.reason).toContain("switch needed");
    },
  },
  {
    name: "4 after switch: Tests → Run Tests",
    inputs: hsb0("config", "config", "config", {
      report: hostReport("config", "config", {
        // The last run was against the system before the switch.
        lastTestRun: buildTestRun({ system: SYSTEM.lockA, finishedAt: hoursAgo(3), results: { "ssh-reachable": true } }),
      }),
      commands: [
        buildCommand({ kind: "switch", state: "succeeded", createdAt: minutesAgo(10) }),
        buildCommand({ kind: "pull", state: "succeeded", createdAt: minutesAgo(30) }),
      ],
    }),
    expected: [G, G, G, G, Y],
    action: (c) => {
      expect(c.tests.action).toBe("test");
      expect(c.tests.reason).toContain("not run for this system");
    },
  },
  {
    name: "5 lock outdated, PR merged on GitHub: Git → Pull",
    // PR #42 was merged on github.com ten minutes ago; the control plane heard
    // of the merge but last read main two hours ago (see docs/compartments.md).
    inputs: hsb0("lockA", "lockA", "lockA", {
      updatePrs: [
        buildUpdatePr({
          number: 42,
          state: "merged",
          mergedAt: minutesAgo(10),
          mergeCommitSha: COMMIT.lockB,
          lockChanges: PR42_CHANGES,
        }),
      ],
    }),
    expected: [G, G, Y, G, G],
    action: (c) => {
      expect(c.lock.action).toBe("pull");
      expect(c.lock.reason).toBe("update PR #42 merged (home-manager, nixpkgs): pull to get the new flake.lock");
    },
  },
  {
    name: "6 agent outdated: Pull + Switch",
    inputs: hsb0("lockA", "lockA", "lockA", { report: hostReport("lockA", "lockA", { agentVersion: "0.0.9" }) }),
    expected: [R, G, G, G, G],
    action: (c) => {
      expect(c.agent.action).toBe("pull-switch");
      expect(c.agent.reason).toBe("agent 0.0.9 is older than 0.1.0: Pull + Switch updates it");
    },
  },
  (() => {
    const failedSwitch = buildCommand({
      kind: "switch",
      state: "failed",
      createdAt: minutesAgo(8),
      exitCode: 1,
      error: [
        "building the system configuration...",
        "error: The option `services.resticc' does not exist. Definition values:",
        "       - In `/nix/store/kq2v8…-source/hosts/hsb0/configuration.nix'",
      ].join("\n"),
      result: { commitBefore: COMMIT.config, commitAfter: COMMIT.config, systemBefore: SYSTEM.lockA, systemAfter: null },
    });
    return {
      name: "7 switch failed: System → View logs",
      inputs: hsb0("config", "lockA", "config", { commands: [failedSwitch, pulled] }),
      expected: [G, G, G, R, G],
      action: (c: Compartments) => {
        expect(c.system.action).toBeNull();
        expect(c.system.commandId).toBe(failedSwitch.id);
        expect(c.system.reason).toBe("switch failed: The option `services.resticc' does not exist. Definition values:");
      },
    } satisfies Scenario;
  })(),
  {
    name: "8 tests failed after a good switch: Rollback System",
    inputs: hsb0("config", "config", "config", {
      report: hostReport("config", "config", {
        lastTestRun: buildTestRun({
          system: SYSTEM.config,
          finishedAt: minutesAgo(5),
          results: { "ssh-reachable": true, "gpu-driver": false, "network-online": false },
        }),
      }),
      commands: [buildCommand({ kind: "switch", state: "succeeded", createdAt: minutesAgo(10) })],
    }),
    expected: [G, G, G, G, R],
    action: (c) => {
      expect(c.tests.action).toBe("rollback");
      expect(c.tests.reason).toBe("tests failed: gpu-driver, network-online");
    },
  },
  (() => {
    const pulling = buildCommand({ kind: "pull", state: "running", createdAt: minutesAgo(0.5) });
    return {
      name: "9 during update: wait for the pull",
      inputs: hsb0("lockA", "lockA", "config", { commands: [pulling] }),
      expected: [G, B, G, G, G],
      action: (c: Compartments) => {
        expect(c.git.action).toBeNull();
        expect(c.git.commandId).toBe(pulling.id);
        expect(c.git.reason).toBe("pulling…");
      },
    } satisfies Scenario;
  })(),
  {
    name: "10 everything broken: rollback, then read the logs",
    // An old agent ran a pull-switch whose activation failed (a unit did not
    // start) and whose tests fail; meanwhile main moved on with config and lock.
    inputs: hsb0("config", "config", "configAndLock", {
      report: hostReport("config", "config", {
        agentVersion: "0.0.9",
        lastTestRun: buildTestRun({
          system: SYSTEM.config,
          finishedAt: minutesAgo(20),
          results: { "ssh-reachable": true, "display-manager": false },
        }),
      }),
      commands: [
        buildCommand({
          kind: "pull-switch",
          state: "failed",
          createdAt: minutesAgo(30),
          exitCode: 4,
          error: [
            "activating the configuration...",
            "warning: the following units failed: display-manager.service",
            "warning: error(s) occurred while switching to the new configuration",
          ].join("\n"),
          result: {
            commitBefore: COMMIT.lockA,
            commitAfter: COMMIT.config,
            systemBefore: SYSTEM.lockA,
            systemAfter: SYSTEM.config,
          },
        }),
      ],
    }),
    expected: [R, Y, Y, R, R],
    action: (c) => {
      expect(c.tests.action).toBe("rollback");
      expect(c.system.reason).toBe("pull-switch failed: warning: the following units failed: display-manager.service");
      expect(c.agent.action).toBe("pull-switch");
    },
  },
];

describe("the ten common scenarios", () => {
  it.each(scenarios)("scenario $name", ({ inputs, expected, action }) => {
    const computed = compute(inputs);
    expect(colours(computed)).toEqual(expected);
    action(computed);
  });

  it("scenario 9's inputs without the running pull are scenario 2 (the blue comes from the command)", () => {
    expect(colours(compute(hsb0("lockA", "lockA", "config")))).toEqual([G, Y, G, G, G]);
  });
});
