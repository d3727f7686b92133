// The emulator binds its port before its webhook receiver exists (the receiver — the control plane —
// needs the emulator's URL to start), then learns the receiver's URL with setWebhookUrl().
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { GitHubEmulator, type GitHubEmulatorOptions } from "../../tools/github-emulator/emulator.ts";
import { PushPayload, SECRET, WebhookReceiver } from "./helpers.ts";

const PingPayload = z.object({ hook_id: z.number(), hook: z.object({ config: z.object({ url: z.string() }) }) });

describe("github emulator: a webhook URL set after start()", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function receiver(): Promise<{ receiver: WebhookReceiver; url: string }> {
    const r = new WebhookReceiver();
    const url = await r.start();
    cleanups.push(() => r.stop());
    return { receiver: r, url };
  }

  async function emulatorWithoutHook(options: Partial<GitHubEmulatorOptions> = {}): Promise<GitHubEmulator> {
    const workDir = await mkdtemp(join(tmpdir(), "github-emulator-test-"));
    const emulator = new GitHubEmulator({ owner: "example", repo: "fleet", workDir, webhookSecret: SECRET, ...options });
    cleanups.push(async () => {
      await emulator.stop();
      await rm(workDir, { recursive: true, force: true });
    });
    return emulator;
  }

  it("pings the URL set after start(), then delivers later events there signed; earlier events went nowhere", async () => {
    const emulator = await emulatorWithoutHook();
    const apiUrl = await emulator.start();
    await emulator.seed({ "flake.nix": "{ }\n" });
    await emulator.flushWebhooks();
    expect(emulator.deliveries.map((d) => [d.event, d.status, d.error])).toEqual([["push", null, "no webhook URL configured"]]);

    const { receiver: hook, url } = await receiver();
    emulator.setWebhookUrl(url);
    const { sha } = await emulator.pushCommit({ files: { "README.md": "hello\n" }, message: "Add a README" });
    await emulator.flushWebhooks();

    expect(hook.received.map((r) => r.event)).toEqual(["ping", "push"]);
    expect(hook.received.every((r) => r.signatureValid)).toBe(true);
    const [ping] = hook.payloads("ping", PingPayload);
    expect(ping?.hook.config.url).toBe(url);
    const [push] = hook.payloads("push", PushPayload);
    expect(push?.after).toBe(sha);
    expect(push?.repository.html_url).toBe(`${apiUrl}/example/fleet`);
  });

  it("refuses a malformed or non-HTTP URL and keeps delivering where it did", async () => {
    const { receiver: hook, url } = await receiver();
    const emulator = await emulatorWithoutHook({ webhookUrl: url });
    await emulator.start();

    expect(() => emulator.setWebhookUrl("127.0.0.1:8787/webhooks/github")).toThrow(/webhook URL must be an absolute URL, got "127\.0\.0\.1:8787/);
    expect(() => emulator.setWebhookUrl("not a url")).toThrow(/webhook URL must be an absolute URL/);
    expect(() => emulator.setWebhookUrl("ftp://127.0.0.1/hook")).toThrow(/webhook URL must be http\(s\), got "ftp:/);
    await emulator.seed({ "flake.nix": "{ }\n" });
    await emulator.flushWebhooks();

    expect(hook.received.map((r) => r.event)).toEqual(["ping", "push"]);
    expect(emulator.deliveries.map((d) => d.status)).toEqual([200, 200]);
  });

  it("refuses a malformed URL in the constructor too", async () => {
    const workDir = await mkdtemp(join(tmpdir(), "github-emulator-test-"));
    cleanups.push(() => rm(workDir, { recursive: true, force: true }));
    expect(() => new GitHubEmulator({ owner: "example", repo: "fleet", workDir, webhookUrl: "localhost/hook" })).toThrow(
      /webhook URL must be an absolute URL, got "localhost\/hook"/,
    );
  });

  it("sends no ping when ping is false, and pings once at start() when the URL was set before it", async () => {
    const quiet = await receiver();
    const silent = await emulatorWithoutHook({ ping: false });
    await silent.start();
    silent.setWebhookUrl(quiet.url);
    await silent.seed({ "flake.nix": "{ }\n" });
    await silent.flushWebhooks();
    expect(quiet.receiver.received.map((r) => r.event)).toEqual(["push"]);

    const early = await receiver();
    const emulator = await emulatorWithoutHook();
    emulator.setWebhookUrl(early.url);
    await emulator.start();
    await emulator.flushWebhooks();
    expect(early.receiver.received.map((r) => r.event)).toEqual(["ping"]);
  });
});
