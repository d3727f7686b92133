// "Last seen" reaches D1 through the coordinator's outbox, many hosts in one batch: a fleet that comes
// online at once (a Worker deploy, a restart) has every host's row written, more hosts than one batch
// holds, and nothing of it left in the outbox afterwards.
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { eventually } from "../support/wait.ts";
import { createHost, poll } from "./helpers.ts";

/** More than the outbox's batch of 100, so at least two batches carry the writes. */
const HOSTS = 130;

const stub = () => env.COORDINATOR.getByName("fleet");

describe("last seen", () => {
  it("a fleet coming online at once has every host's last-seen written to D1, in batches, and the outbox emptied", async () => {
    const hosts = await Promise.all(Array.from({ length: HOSTS }, (_, i) => createHost(`ls-${String(i).padStart(3, "0")}`)));
    const before = Date.now();
    // All at once, as a fleet reconnecting does: the writes pile up behind the first one and go together.
    const answers = await Promise.all(hosts.map((host) => poll(host.token, {}, 0)));
    expect(answers.map((res) => res.status)).toEqual(hosts.map(() => 200));

    const written = await eventually("every host's last-seen in D1", async () => {
      const { results } = await env.DB.prepare("SELECT id, last_seen_at FROM hosts WHERE name LIKE 'ls-%' AND last_seen_at IS NOT NULL").all<{
        id: string;
        last_seen_at: string;
      }>();
      return results.length === HOSTS ? results : null;
    }, { timeoutMs: 15_000 });
    expect(new Set(written.map((row) => row.id))).toEqual(new Set(hosts.map((host) => host.id)));
    for (const row of written) expect(Date.parse(row.last_seen_at)).toBeGreaterThanOrEqual(before - 1000);

    const pending = await runInDurableObject(stub(), (_instance, state) =>
      Number(state.storage.sql.exec("SELECT count(*) AS n FROM outbox WHERE key LIKE 'last-seen:%'").one().n),
    );
    expect(pending).toBe(0);
  });
});
