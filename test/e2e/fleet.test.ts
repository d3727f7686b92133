/**
 * End to end with real parts: the control plane on workerd (wrangler dev, local
 * D1, the coordinator Durable Object) and three real agent processes, each its
 * own host with its own clone of one bare origin, a real Nix flake, and a
 * nixos-rebuild shim that builds with nix and flips the host's system link.
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { z } from "zod";
import { CommandView, DashboardEvent, HostView, type StoredOutputChunk } from "../../common/protocol.ts";
import { createFleetRepo, type FleetRepo } from "../../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { adminApi } from "../support/admin-api.ts";
import { startControlPlane, type ControlPlane } from "../support/control-plane.ts";
import { enrollE2eAgent, killE2eAgents, restartE2eAgent, tailOfLogs, type E2eAgent } from "../support/e2e-agent.ts";
import { eventuallyWith } from "../support/wait.ts";
import { removeHostRoot } from "../support/host-root.ts";

// Switches build with real Nix; give each step room on a loaded 2-core machine.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const HOSTS = ["alpha", "bravo", "charlie"] as const;
type HostName = (typeof HOSTS)[number];
/** Short holds keep the test quick; the protocol is the same at 90 s. */
const POLL_SECONDS = 5;

let root: string;
let cp: ControlPlane;
let fleet: FleetRepo;
const hosts = new Map<HostName, E2eAgent>();

const admin = adminApi(() => cp.url);

const hostView = (name: string) => admin(HostView.extend({ commands: z.array(CommandView) }), `/api/hosts/${name}`);
const command = async (id: string) => (await admin(z.object({ command: CommandView }), `/api/commands/${id}`)).command;
const queue = async (host: string, kind: string) =>
  (await admin(z.object({ command: CommandView }), `/api/hosts/${host}/commands`, { body: { kind } })).command;

/** Waits on a condition; a timeout shows the end of each agent's log. */
const eventually = eventuallyWith({ timeoutMs: 45_000, intervalMs: 200, details: () => tailOfLogs(hosts.values(), 30) });

const waitingPolls = async () => (await admin(z.object({ waitingPolls: z.number() }), "/api/stats")).waitingPolls;

/**
 * Waits until the control plane no longer holds the last poll of a host whose agent is gone: the hold
 * runs out POLL_SECONDS after the poll came (the host's last-seen time). A command queued before then
 * would be handed to that poll, which nobody reads any more.
 */
async function heldPollRunOut(name: HostName): Promise<void> {
  const { lastSeenAt } = await hostView(name);
  if (lastSeenAt === null) throw new Error(`${name} was never seen`);
  const runsOut = Date.parse(lastSeenAt) + POLL_SECONDS * 1000;
  // The other agents each hold a poll too: fewer than one per host means this one has gone.
  await eventually(`${name}'s held poll to run out`, async () => Date.now() > runsOut && (await waitingPolls()) < HOSTS.length);
}

const finalState = (id: string) =>
  eventually(`command ${id} to finish`, async () => {
    const view = await command(id);
    return ["succeeded", "failed", "cancelled", "timed-out", "lost"].includes(view.state) ? view : null;
  });

describeWithNix("a fleet of three real agents against the local control plane", () => {
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-e2e-"));
    const fleetEnv = isolatedHostEnv(path.join(root, "fleet-env"));
    [cp, fleet] = await Promise.all([
      startControlPlane({ vars: { POLL_TIMEOUT_SECONDS: String(POLL_SECONDS) } }),
      createFleetRepo({ root: path.join(root, "fleet"), hosts: [...HOSTS], env: fleetEnv }),
    ]);
    for (const name of HOSTS) {
      const agent = await enrollE2eAgent({
        dir: path.join(root, name),
        name,
        url: cp.url,
        repoUrl: fleet.origin,
        branch: fleet.branch,
        pollTimeoutSeconds: POLL_SECONDS,
        tests: {
          commands: [
            { name: "responds", command: "true" },
            // Only bravo has a slow test: it is the host we stop and kill mid-command.
            ...(name === "bravo" ? [{ name: "slow-soak", command: "sleep 97" }] : []),
          ],
        },
        logLevel: "debug",
      });
      hosts.set(name, agent);
    }
  }, 180_000);

  afterAll(async () => {
    await killE2eAgents(hosts.values());
    await cp?.stop();
    if (root) await removeHostRoot(root);
  });

  it("enrolls three hosts that come online and report", async () => {
    for (const name of HOSTS) {
      const view = await eventually(`${name} to report`, async () => {
        const current = await hostView(name);
        return current.online && current.report ? current : null;
      });
      expect(view.report?.hostname).toBeTruthy();
      expect(view.report?.platform).toBe("nixos");
      expect(view.compartments.agent.state).toBe("green");
    }
  });

  it("runs pull-switch on one host, streams its output live, and the next report shows the new commit and system", async () => {
    const head = await fleet.setHost("alpha", "alpha generation 2");
    const expectedSystem = await fleet.systemPath("alpha");

    const socket = new WebSocket(`${cp.url.replace("http", "ws")}/api/events`);
    const events: DashboardEvent[] = [];
    socket.addEventListener("message", (message) => events.push(DashboardEvent.parse(JSON.parse(String(message.data)))));
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve);
      socket.addEventListener("error", reject);
    });

    const queued = await queue("alpha", "pull-switch");
    const done = await finalState(queued.id);
    expect(done.state, done.error ?? "").toBe("succeeded");
    expect(done.result?.commitAfter).toBe(head);
    expect(done.result?.systemAfter).toBe(expectedSystem);

    // Streamed: output events for this command reached the dashboard before it finished.
    const outputEvents = events.filter((e): e is Extract<DashboardEvent, { type: "output" }> => e.type === "output" && e.commandId === queued.id);
    const finishedAt = events.findIndex((e) => e.type === "command" && e.command.id === queued.id && e.command.state === "succeeded");
    expect(outputEvents.length).toBeGreaterThan(0);
    expect(events.indexOf(outputEvents[0]!)).toBeLessThan(finishedAt);
    socket.close();

    // …and stored, readable later, in order.
    const output = await admin(
      z.object({ chunks: z.array(z.object({ seq: z.number(), stream: z.string(), data: z.string() })) }),
      `/api/commands/${queued.id}/output`,
    );
    const seqs = output.chunks.map((c) => c.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const streamed: StoredOutputChunk[] = outputEvents.flatMap((e) => e.chunks);
    expect(output.chunks.map((c) => c.data).join("")).toBe(streamed.map((c) => c.data).join(""));

    const view = await eventually("alpha's report of the new commit", async () => {
      const current = await hostView("alpha");
      return current.report?.repo.commit.value === head ? current : null;
    });
    expect(view.report?.system.current.value).toBe(expectedSystem);
    expect(await hosts.get("alpha")!.shim.currentSystem()).toBe(expectedSystem);
    // The other hosts were not touched.
    expect((await hostView("charlie")).report?.repo.commit.value).not.toBe(head);
  });

  it("stops a long command: its process group is killed and it ends cancelled", async () => {
    const long = await queue("bravo", "test");
    await eventually("the slow test to run", async () => (await command(long.id)).state === "running");
    const stop = await queue("bravo", "stop");
    expect(stop.target).toBe(long.id);
    expect((await finalState(long.id)).state).toBe("cancelled");
    const stopped = await finalState(stop.id);
    expect(stopped.state).toBe("succeeded");
    expect(stopped.result?.stopped).toBe(true);
  });

  it("keeps a command queued for an offline host and delivers it when the agent returns", async () => {
    const charlie = hosts.get("charlie")!;
    await killE2eAgents([charlie], "SIGTERM");
    await heldPollRunOut("charlie");
    const pending = await queue("charlie", "pull");
    // Handed to no poll: queued when answered, and still queued when read back.
    expect(pending.state).toBe("queued");
    expect((await command(pending.id)).state).toBe("queued");
    restartE2eAgent(charlie);
    const done = await finalState(pending.id);
    expect(done.state, done.error ?? "").toBe("succeeded");
    expect(done.result?.commitAfter).toBe(await fleet.head());
  });

  it("survives the control plane killed and restarted mid-command: nothing lost, nothing run twice, nothing stuck", async () => {
    const charlie = hosts.get("charlie")!;
    await killE2eAgents([charlie], "SIGTERM");
    await heldPollRunOut("charlie");
    const waiting = await queue("charlie", "pull");
    expect(waiting.state).toBe("queued");
    const long = await queue("bravo", "test");
    await eventually("the slow test to run", async () => (await command(long.id)).state === "running");

    await cp.restart();

    // The running command is still known and can be stopped; it ends cancelled, not stuck.
    const stop = await queue("bravo", "stop");
    expect(stop.target).toBe(long.id);
    expect((await finalState(long.id)).state).toBe("cancelled");
    // The command queued for the offline host survived and is delivered once when it returns.
    expect((await command(waiting.id)).state).toBe("queued");
    restartE2eAgent(charlie);
    const done = await finalState(waiting.id);
    expect(done.state, done.error ?? "").toBe("succeeded");
    const received = charlie.log.join("").split("\n").filter((line) => line.includes("command received") && line.includes(waiting.id));
    expect(received).toHaveLength(1);
    // And a new command after the restart reaches a host whose agent reconnected on its own.
    const next = await queue("alpha", "refresh");
    expect((await finalState(next.id)).state).toBe("succeeded");
  });

  it("ends a killed agent's command lost, never running", async () => {
    const bravo = hosts.get("bravo")!;
    const long = await queue("bravo", "test");
    await eventually("the slow test to run", async () => (await command(long.id)).state === "running");
    await killE2eAgents([bravo], "SIGKILL");
    restartE2eAgent(bravo);
    const done = await finalState(long.id);
    expect(done.state).toBe("lost");
    expect(done.error).toContain("no longer holds");
    // The host works again afterwards.
    const next = await queue("bravo", "refresh");
    expect((await finalState(next.id)).state).toBe("succeeded");
  });
});
