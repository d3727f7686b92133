import { describe, expect, it } from "vitest";
import {
  DEFAULT_COMMAND_HISTORY_LIMIT,
  fleetBatch,
  fleetPruneCount,
  historyBounds,
  OUTPUT_PER_HOST,
  PER_HOST_KEPT,
  PER_HOST_MAX,
  storedCommandsBound,
  type HistoryBounds,
} from "../../worker/commands/history.ts";

const bounds = (fleetLimit: number): HistoryBounds => ({ fleetLimit, perHostMax: PER_HOST_MAX, perHostKept: PER_HOST_KEPT, outputPerHost: OUTPUT_PER_HOST });

describe("COMMAND_HISTORY_LIMIT", () => {
  it.each([
    [undefined, DEFAULT_COMMAND_HISTORY_LIMIT, null],
    ["", DEFAULT_COMMAND_HISTORY_LIMIT, null],
    ["1000", 1000, null],
    [" 20 ", 20, null],
    ["19", DEFAULT_COMMAND_HISTORY_LIMIT, 'COMMAND_HISTORY_LIMIT must be a whole number of at least 20, not "19": keeping 50000'],
    ["1e3", 1000, null],
    ["2.5", DEFAULT_COMMAND_HISTORY_LIMIT, 'COMMAND_HISTORY_LIMIT must be a whole number of at least 20, not "2.5": keeping 50000'],
    ["lots", DEFAULT_COMMAND_HISTORY_LIMIT, 'COMMAND_HISTORY_LIMIT must be a whole number of at least 20, not "lots": keeping 50000'],
  ])("%j keeps %d finished commands for the fleet (problem: %j)", (raw, limit, problem) => {
    const read = historyBounds(raw);
    expect(read.bounds).toEqual(bounds(limit));
    expect(read.problem).toBe(problem);
  });
});

describe("the fleet pass", () => {
  const limit = bounds(1000);

  it("prunes in batches of a twentieth of the limit, at least one", () => {
    expect(fleetBatch(limit)).toBe(50);
    expect(fleetBatch(bounds(20))).toBe(1);
  });

  it.each([
    { finished: 999, left: 0, prune: 0, why: "below the limit" },
    { finished: 1000, left: 0, prune: 0, why: "at the limit" },
    { finished: 1001, left: 0, prune: 51, why: "one past it: down to a batch below" },
    { finished: 1001, left: 950, prune: 51, why: "the last pass reached its target: the same again" },
    { finished: 1400, left: 0, prune: 450, why: "far past it (a smaller limit configured): all the way down at once" },
    { finished: 1100, left: 1080, prune: 0, why: "the hosts' kept newest filled the limit at the last pass: wait for a batch more" },
    { finished: 1131, left: 1080, prune: 181, why: "a batch more ended since: try again" },
  ])("$finished finished, $left left by the last pass: prunes $prune ($why)", ({ finished, left, prune }) => {
    expect(fleetPruneCount(finished, limit, left)).toBe(prune);
  });
});

describe("what a fleet keeps at most", () => {
  it.each([
    // At the default: small fleets are held by each host's 200, large ones by each host's newest 20.
    { hosts: 10, limit: DEFAULT_COMMAND_HISTORY_LIMIT, most: 2_000 },
    { hosts: 100, limit: DEFAULT_COMMAND_HISTORY_LIMIT, most: 20_000 },
    { hosts: 1_000, limit: DEFAULT_COMMAND_HISTORY_LIMIT, most: 50_000 },
    { hosts: 10_000, limit: DEFAULT_COMMAND_HISTORY_LIMIT, most: 202_500 },
    { hosts: 1_000, limit: 1_000, most: 20_050 },
  ])("$hosts hosts with a limit of $limit: $most finished commands", ({ hosts, limit, most }) => {
    expect(storedCommandsBound(hosts, bounds(limit))).toBe(most);
  });
});
