/**
 * What the binary cache's clean-up keeps, as D1 knows it (worker/cache/clean-up.ts): every host's running,
 * booted and previous systems and its desired system (its report), CI's publications of main's last
 * commits, the open update PRs' heads and main's head.
 */
import { and, desc, eq, inArray, max } from "drizzle-orm";
import type { Report } from "../../common/protocol.ts";
import type { CacheRoots } from "../cache/clean-up.ts";
import type { Database } from "./client.ts";
import { loadMainHead } from "./github.ts";
import { listReports } from "./reports.ts";
import { githubPullRequests } from "./schema-github.ts";
import { desiredPublications } from "./schema.ts";

/**
 * The systems a host's report names that a clean-up must keep: what runs, what it booted, the generation
 * before the current one (what a rollback activates) and its evaluation of main.
 */
export function reportedSystems(report: Report): string[] {
  const paths = [report.system.current.value, report.system.desired?.value ?? null];
  const generations = report.generations?.value ?? [];
  const current = generations.find((generation) => generation.current);
  const previous = current === undefined ? undefined : generations.filter((generation) => generation.number < current.number).sort((a, b) => b.number - a.number)[0];
  paths.push(current?.storePath ?? null, previous?.storePath ?? null, generations.find((generation) => generation.booted)?.storePath ?? null);
  const latest = report.desired?.latest;
  if (latest && "outPath" in latest) paths.push(latest.outPath);
  return paths.filter((path): path is string => path !== null);
}

/** The store paths CI published for the `commits` newest commits it published. */
async function recentPublications(db: Database, commits: number): Promise<string[]> {
  const newest = await db
    .select({ commit: desiredPublications.commitSha, at: max(desiredPublications.publishedAt) })
    .from(desiredPublications)
    .groupBy(desiredPublications.commitSha)
    .orderBy(desc(max(desiredPublications.publishedAt)))
    .limit(commits);
  if (newest.length === 0) return [];
  const rows = await db
    .select({ outPath: desiredPublications.outPath })
    .from(desiredPublications)
    .where(inArray(desiredPublications.commitSha, newest.map((row) => row.commit)));
  return rows.map((row) => row.outPath);
}

export async function loadCacheRoots(db: Database, keepCommits: number): Promise<CacheRoots> {
  const [reports, published, pulls, main] = await Promise.all([
    listReports(db),
    recentPublications(db, keepCommits),
    db
      .select({ headSha: githubPullRequests.headSha })
      .from(githubPullRequests)
      .where(and(eq(githubPullRequests.state, "open"), eq(githubPullRequests.isUpdatePr, true))),
    loadMainHead(db),
  ]);
  return {
    storePaths: [...[...reports.values()].flatMap((stored) => reportedSystems(stored.report)), ...published],
    openPullHeads: pulls.map((pull) => pull.headSha),
    mainHead: main?.commit ?? null,
  };
}
