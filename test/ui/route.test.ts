import { describe, expect, it } from "vitest";
import { hostPath, parseRoute } from "../../ui/common/route.ts";

describe("routes", () => {
  it("maps paths to pages", () => {
    expect(parseRoute("/")).toEqual({ page: "fleet" });
    expect(parseRoute("/audit/")).toEqual({ page: "audit" });
    expect(parseRoute("/rollouts")).toEqual({ page: "rollouts" });
    expect(parseRoute("/hosts/hsb0")).toEqual({ page: "host", name: "hsb0", commandId: null });
    expect(parseRoute("/hosts/hsb0", "?command=cmd_0123456789")).toEqual({ page: "host", name: "hsb0", commandId: "cmd_0123456789" });
    expect(parseRoute("/nope")).toEqual({ page: "not-found", path: "/nope" });
  });

  it("builds host paths the parser reads back", () => {
    const path = new URL(hostPath("hsb0", "cmd_0123456789"), "http://x");
    expect(parseRoute(path.pathname, path.search)).toEqual({ page: "host", name: "hsb0", commandId: "cmd_0123456789" });
  });
});
