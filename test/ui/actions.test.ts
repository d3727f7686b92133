import { describe, expect, it } from "vitest";
import { BULK_KINDS, compartmentActions, needsConfirmation } from "../../ui/common/actions.ts";
import { describeCompartment, stateDisplay } from "../../ui/common/compartment-display.ts";
import { command, compartment } from "./fixtures.ts";

describe("compartmentActions", () => {
  it("puts the compartment's suggested action first and marks it (Click Git → Pull)", () => {
    const actions = compartmentActions(compartment("yellow", { action: "switch" }), null);
    expect(actions[0]).toMatchObject({ kind: "switch", suggested: true });
    expect(actions.filter((action) => action.suggested)).toHaveLength(1);
    expect(actions.map((action) => action.kind)).toEqual(["switch", "pull", "pull-switch", "test", "rollback", "stop", "restart-agent"]);
  });

  it("keeps the usual order when nothing is suggested", () => {
    expect(compartmentActions(compartment("green"), null).map((action) => action.kind)[0]).toBe("pull");
  });

  it("disables Stop when nothing runs, and the one-at-a-time commands while one runs, saying why", () => {
    const idle = compartmentActions(compartment("green"), null);
    expect(idle.find((action) => action.kind === "stop")).toMatchObject({ disabled: true, disabledReason: "nothing queued or running" });
    const busy = compartmentActions(compartment("blue"), command("alpha", { kind: "pull-switch", state: "running" }));
    expect(busy.find((action) => action.kind === "stop")?.disabled).toBe(false);
    expect(busy.find((action) => action.kind === "switch")).toMatchObject({ disabled: true, disabledReason: "Pull + Switch is running" });
  });

  it("treats a finished active command as no command", () => {
    const done = compartmentActions(compartment("green"), command("alpha", { state: "succeeded" }));
    expect(done.find((action) => action.kind === "pull")?.disabled).toBe(false);
  });

  it("asks before a rollback only", () => {
    expect(needsConfirmation("rollback")).toBe(true);
    expect(needsConfirmation("pull")).toBe(false);
    expect(BULK_KINDS).toEqual(["pull", "switch", "pull-switch", "test"]);
  });
});

describe("compartment display", () => {
  it("gives every state an icon and a word, so colour is never the only signal", () => {
    for (const state of ["green", "yellow", "red", "blue", "gray"] as const) {
      const display = stateDisplay("git", state);
      expect(display.icon).not.toBe("");
      expect(display.label).not.toBe("");
    }
    expect(stateDisplay("git", "yellow")).toEqual({ icon: "!", label: "outdated" });
    expect(stateDisplay("tests", "green").label).toBe("passed");
    expect(stateDisplay("tests", "yellow").label).toBe("not run");
  });

  it("describes a compartment by its reason (its name and state are the cell's name), and says when it is the last known state", () => {
    expect(describeCompartment(compartment("yellow", { reason: "behind main: abc1234 → def5678" }))).toBe("behind main: abc1234 → def5678");
    expect(describeCompartment(compartment("green", { stale: true, reason: "offline" }))).toBe("last known state: the host is offline. offline");
    expect(describeCompartment(compartment("yellow", { reason: "Update PR pending" }), "Auto-merge at 03:00.")).toBe("Update PR pending Auto-merge at 03:00.");
  });
});
