import { describe, expect, it } from "vitest";
import { NIXFLEET_VERSION } from "../../common/version.ts";
import { api } from "./helpers.ts";

describe("GET /api/health", () => {
  it("answers with the shipped version and protocol", async () => {
    const res = await api("/api/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, version: NIXFLEET_VERSION, protocol: 1, auth: "development" });
  });

  it("answers unknown API paths with the JSON error shape", async () => {
    const res = await api("/api/nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: "not_found", message: "no route for GET /api/nope" } });
  });
});
