/**
 * Every poll answer says where main is (the push webhook's head, stored in D1), and a held poll is
 * answered at once when main moves, so agents start evaluating their desired system without waiting
 * out their poll.
 */
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { PollResponse } from "../../common/protocol.ts";
import { openDatabase } from "../../worker/db/client.ts";
import { loadFleetTarget, saveRepoState } from "../../worker/db/github.ts";
import { coordinator } from "../../worker/coordinator.ts";
import { eventually } from "../support/wait.ts";
import { deliver, pushToMain, REPOSITORY, resetGitHubTables, SHAS } from "./github-helpers.ts";
import { api, createHost, poll, sampleReport } from "./helpers.ts";

const db = () => openDatabase(env.DB);
const waitingPolls = async () => z.object({ waitingPolls: z.number() }).parse(await (await api("/api/stats")).json()).waitingPolls;
const TREE = "7e3f2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f";

const parsePoll = async (res: Response) => {
  expect(res.status).toBe(200);
  return PollResponse.parse(await res.json());
};

const push = (before: string, after: string) => pushToMain(before, after, TREE);

beforeEach(async () => {
  await resetGitHubTables();
  await saveRepoState(db(), {
    repository: REPOSITORY,
    branch: "main",
    head: { sha: SHAS.a, message: "earlier", author: "Codertocat", committedAt: "2019-05-15T15:00:00Z" },
    lockHash: "c".repeat(64),
    lockLastModified: { nixpkgs: 1_702_234_567 },
    lockProblem: null,
    updatedAt: "2019-05-15T15:00:00.000Z",
    source: "schedule",
  });
  // The coordinator's copy follows D1 when told the repository changed, as every writer of D1's state does.
  await coordinator(env).notify({ type: "repo" });
});

describe("main's head in the poll answer", () => {
  it("tells every poll answer main's branch and commit as the push webhook stored them", async () => {
    const { token } = await createHost("h1");
    const answer = await parsePoll(await poll(token, { report: sampleReport() }, 0));
    expect(answer.main).toEqual({ branch: "main", commit: SHAS.a });
  });

  it("stores the head's git tree from the push", async () => {
    await deliver("push", push(SHAS.a, SHAS.b));
    expect((await loadFleetTarget(db())).repo?.head).toMatchObject({ sha: SHAS.b, tree: TREE });
  });

  it("answers a held poll at once when main moves, with main's new head", async () => {
    const { token } = await createHost("h2");
    await parsePoll(await poll(token, { report: sampleReport() }, 0));
    const holding = await waitingPolls();
    const holdSeconds = 30;
    const pending = poll(token, {}, holdSeconds);
    await eventually("the poll to be held", async () => (await waitingPolls()) > holding);
    const pushedAt = Date.now();
    const { response } = await deliver("push", push(SHAS.a, SHAS.b));
    expect(response.status).toBe(200);
    const answer = await parsePoll(await pending);
    // Well before the hold ran out: the push ended it.
    expect(Date.now() - pushedAt).toBeLessThan((holdSeconds / 2) * 1000);
    expect(answer.commands).toEqual([]);
    expect(answer.main).toEqual({ branch: "main", commit: SHAS.b });
  });

  it("keeps holding polls when the repository changed but main did not move", async () => {
    const { token } = await createHost("h3");
    await parsePoll(await poll(token, { report: sampleReport() }, 0));
    const holding = await waitingPolls();
    let answered = false;
    const pending = poll(token, {}, 3).then((res) => {
      answered = true;
      return res;
    });
    await eventually("the poll to be held", async () => (await waitingPolls()) > holding);
    // The repository changed (an update PR synced, say), main did not.
    await coordinator(env).notify({ type: "repo" });
    expect(answered).toBe(false);
    expect(await waitingPolls()).toBeGreaterThan(holding);
    expect((await parsePoll(await pending)).main).toEqual({ branch: "main", commit: SHAS.a });
  });
});
