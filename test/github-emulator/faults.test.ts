// Injected failures: the next N matching API requests are answered like GitHub's own 5xx (its error
// body and headers), only those, and the request after them is served.
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { startEmulator } from "./helpers.ts";

describe("github emulator: injected failures", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it("answers the next matching requests with the status and GitHub's error shape, then serves them again", async () => {
    const env = await startEmulator();
    close = env.close;
    const sha = await env.emulator.seed({ "flake.nix": "{ }\n" }, "Initial commit");
    const api = env.emulator.apiUrl;
    const postStatus = () =>
      fetch(`${api}/repos/example/fleet/statuses/${sha}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ state: "success", context: "ci" }) });
    const control = await fetch(`${api}/_emulator/faults`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ method: "POST", path: `/repos/example/fleet/statuses/${sha}`, status: 502, count: 2 }),
    });
    expect(control.status).toBe(204);

    // Another path, and another method on the same path, are served.
    expect((await fetch(`${api}/repos/example/fleet/commits/${sha}/statuses`)).status).toBe(200);
    const refused = [await postStatus(), await postStatus()];
    expect(refused.map((r) => r.status)).toEqual([502, 502]);
    expect(await refused[0]!.json()).toEqual({ message: "Bad Gateway", documentation_url: "https://docs.github.com/rest", status: "502" });
    expect(refused[0]!.headers.get("x-ratelimit-remaining")).toMatch(/^\d+$/);
    expect((await postStatus()).status).toBe(201);

    const statuses = z.array(z.object({ state: z.string() })).parse(await (await fetch(`${api}/repos/example/fleet/commits/${sha}/statuses`)).json());
    expect(statuses).toEqual([expect.objectContaining({ state: "success" })]);
  });

  it("forgets faults not used up, and refuses a fault that is not a server error", async () => {
    const env = await startEmulator();
    close = env.close;
    await env.emulator.seed({ "flake.nix": "{ }\n" }, "Initial commit");
    env.emulator.failNext({ method: "GET", path: "/repos/example/fleet/branches", status: 503, count: 5 });
    expect((await fetch(`${env.emulator.apiUrl}/repos/example/fleet/branches/main`)).status).toBe(503);
    expect((await fetch(`${env.emulator.apiUrl}/_emulator/faults`, { method: "DELETE" })).status).toBe(204);
    expect((await fetch(`${env.emulator.apiUrl}/repos/example/fleet/branches/main`)).status).toBe(200);
    const notAFault = await fetch(`${env.emulator.apiUrl}/_emulator/faults`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ method: "GET", path: "/repos", status: 404 }),
    });
    expect(notAFault.status).toBe(422);
  });
});
