import { describe, expect, it, vi } from "vitest";
import type { Role } from "../../common/protocol.ts";
import { refreshOutcome, refreshRefusal } from "../../ui/common/repo-refresh.ts";
import { updatePrMenuEntries } from "../../ui/common/update-pr-actions.ts";
import { ApiError } from "../../ui/data/api.ts";
import { updatePr } from "./fixtures.ts";

const me = (role: Role) => ({ actor: `${role}@example.com`, role });

describe("the update PR's actions in a Lock cell's menu", () => {
  it("offers Merge & Deploy and Merge of the PR, each opening its confirmation", () => {
    const open = { mergeAndDeploy: vi.fn(), merge: vi.fn() };
    const entries = updatePrMenuEntries(updatePr({ number: 7 }), me("operator"), null, open);
    expect(entries.map((entry) => [entry.label, entry.disabled, entry.suggested])).toEqual([
      ["Merge & Deploy #7…", false, true],
      ["Merge #7…", false, false],
    ]);
    entries[1]!.run();
    expect(open.merge).toHaveBeenCalledOnce();
    expect(open.mergeAndDeploy).not.toHaveBeenCalled();
    entries[0]!.run();
    expect(open.mergeAndDeploy).toHaveBeenCalledOnce();
  });

  it("disables both for a viewer and says why", () => {
    const entries = updatePrMenuEntries(updatePr(), me("viewer"), null, { mergeAndDeploy: () => {}, merge: () => {} });
    expect(entries).toHaveLength(2);
    for (const entry of entries) expect(entry).toMatchObject({ disabled: true, hint: "needs the operator role: viewer@example.com is a viewer" });
  });

  it("leaves the suggestion to the host's own command (pull) and says that Merge & Deploy of a PR whose CI failed asks for an override", () => {
    const [mergeAndDeploy] = updatePrMenuEntries(updatePr({ ciState: "failure" }), me("admin"), "pull", { mergeAndDeploy: () => {}, merge: () => {} });
    expect(mergeAndDeploy).toMatchObject({ suggested: false, hint: "CI failed on this PR: asks for an override with a reason" });
  });
});

describe("what Refresh from GitHub says", () => {
  const repo = {
    repository: "example/fleet",
    branch: "main",
    head: { sha: "9c41b7a".padEnd(40, "0"), message: "m", author: "a", committedAt: "2025-12-01T10:00:00.000Z" },
    lock: { hash: null, lastModified: {} },
    updatedAt: "2025-12-01T10:00:00.000Z",
    source: "api" as const,
  };

  it.each([
    [1, "1 update PR open"],
    [0, "no update PR open"],
    [2, "2 update PRs open"],
  ])("names the head and %i open update PR(s)", (open, words) => {
    expect(refreshOutcome(repo, open, new Date(2025, 11, 1, 14, 5))).toBe(`Read from GitHub at 14:05: main @ 9c41b7a · ${words}`);
  });

  it("says when the branch has no commit", () => {
    expect(refreshOutcome({ ...repo, head: null }, 0, new Date(2025, 11, 1, 9, 0))).toBe("Read from GitHub at 09:00: main has no commit yet · no update PR open");
  });

  it.each([
    [new ApiError(429, "github_rate_limited", "GitHub rate limit reached; retry after 14:06"), "GitHub is rate limiting this control plane (429): nothing was read. GitHub rate limit reached; retry after 14:06"],
    [new ApiError(503, "github_not_configured", "GITHUB_REPOSITORY is not set"), "GitHub is not set up (503): GITHUB_REPOSITORY is not set"],
    [new ApiError(502, "github_error", "Bad Gateway"), "GitHub could not be read (502): Bad Gateway"],
    [new ApiError(403, "role_required", "needs the operator role"), "Refresh failed (403): needs the operator role"],
    [new ApiError(0, "network", "cannot reach the control plane"), "Refresh failed (no answer): cannot reach the control plane"],
  ])("puts the refusal %s in words", (error, text) => {
    expect(refreshRefusal(error)).toBe(text);
  });
});
