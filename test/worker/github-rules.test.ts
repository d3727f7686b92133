import { describe, expect, it } from "vitest";
import { combineCiState, conclusionOutcome, statusOutcome } from "../../worker/github/ci.ts";
import { readGitHubConfig } from "../../worker/github/config.ts";
import { REVERT_BRANCH_PREFIX, REVERT_PR_LABEL } from "../../worker/github/revert-pull.ts";
import { isUpdatePr } from "../../worker/update-prs/records.ts";
import type { WorkerEnv } from "../../worker/env.ts";

const rule = { label: "automated", titlePattern: "flake.lock" };
const UPDATE_BRANCH = "update_flake_lock_action";

describe("update-PR detection", () => {
  it.each([
    [["automated"], "Weekly update", true],
    [["Automated"], "Weekly update", true],
    [[], "flake.lock: Update", true],
    [[], "chore: bump FLAKE.LOCK", true],
    [["dependencies"], "Update README", false],
    [[], "flakelock", false],
  ])("labels %j, title %j → update PR: %s", (labels, title, expected) => {
    expect(isUpdatePr({ labels, title, headRef: UPDATE_BRANCH }, rule)).toBe(expected);
  });

  it.each([
    ["its branch", [], `${REVERT_BRANCH_PREFIX}abc1234-m0`],
    ["its label", [REVERT_PR_LABEL], "revert-by-hand"],
    ["its label in another case", [REVERT_PR_LABEL.toUpperCase(), "automated"], "revert-by-hand"],
    ["its branch, with the update label too", ["automated"], `${REVERT_BRANCH_PREFIX}abc1234-m0`],
  ])("a revert PR known by %s is never an update PR, though its title names flake.lock", (_, labels, headRef) => {
    expect(isUpdatePr({ labels, title: 'Revert "flake.lock: Update (#12)"', headRef }, rule)).toBe(false);
  });

  it("uses the configured label and title fragment", () => {
    const custom = { label: "deps", titlePattern: "nix flake update" };
    expect(isUpdatePr({ labels: ["deps"], title: "x", headRef: UPDATE_BRANCH }, custom)).toBe(true);
    expect(isUpdatePr({ labels: ["automated"], title: "flake.lock", headRef: UPDATE_BRANCH }, custom)).toBe(false);
    expect(isUpdatePr({ labels: [], title: "Run Nix Flake Update", headRef: UPDATE_BRANCH }, custom)).toBe(true);
  });

  it("reads the rule from UPDATE_PR_LABEL and UPDATE_PR_TITLE_PATTERN, with the spec's defaults", () => {
    const env = (vars: Record<string, string>): WorkerEnv => Object.assign(Object.create(null), vars);
    expect(readGitHubConfig(env({})).updatePrRule).toEqual(rule);
    expect(readGitHubConfig(env({ UPDATE_PR_LABEL: "deps", UPDATE_PR_TITLE_PATTERN: "bump" })).updatePrRule).toEqual({ label: "deps", titlePattern: "bump" });
  });
});

describe("CI state", () => {
  it("is unknown without signals, failure if any failed, pending if any runs, else success", () => {
    expect(combineCiState([])).toBe("unknown");
    expect(combineCiState(["success", "pending", "failure"])).toBe("failure");
    expect(combineCiState(["success", "pending"])).toBe("pending");
    expect(combineCiState(["success", "success"])).toBe("success");
  });

  it.each([
    ["queued", null, "pending"],
    ["in_progress", null, "pending"],
    ["completed", "success", "success"],
    ["completed", "neutral", "success"],
    ["completed", "skipped", "success"],
    ["completed", "failure", "failure"],
    ["completed", "cancelled", "failure"],
    ["completed", "timed_out", "failure"],
    ["completed", "action_required", "failure"],
  ])("a check %s / %s counts as %s", (status, conclusion, expected) => {
    expect(conclusionOutcome(status, conclusion)).toBe(expected);
  });

  it("counts a commit status of error as a failure", () => {
    expect(statusOutcome("error")).toBe("failure");
    expect(statusOutcome("pending")).toBe("pending");
  });
});

describe("configuration", () => {
  const env = (vars: Record<string, string>): WorkerEnv => Object.assign(Object.create(null), vars);

  it("prefers a token over App credentials and defaults the API URL and branch", () => {
    const config = readGitHubConfig(env({ GITHUB_REPOSITORY: "markus-barta/nixcfg", GITHUB_TOKEN: "t", GITHUB_APP_ID: "1" }));
    expect(config.auth).toEqual({ kind: "token", token: "t" });
    expect(config.apiUrl).toBe("https://api.github.com");
    expect(config.branch).toBe("main");
    expect(config.repository?.fullName).toBe("markus-barta/nixcfg");
  });

  it("rejects a repository that is not owner/name, saying so", () => {
    const config = readGitHubConfig(env({ GITHUB_REPOSITORY: "https://github.com/markus-barta/nixcfg" }));
    expect(config.repository).toBeNull();
    expect(config.problems.join("\n")).toContain("is not of the form owner/name");
  });
});
