import { describe, expect, it } from "vitest";
import { ROLES, type Role } from "../../common/protocol.ts";
import { COMMAND_ROLE, HOST_ADMIN_ROLE, roleDenial } from "../../ui/common/permissions.ts";

const me = (role: Role) => ({ actor: `${role}@example.com`, role });

describe("roleDenial", () => {
  it.each([
    ["viewer", COMMAND_ROLE, "needs the operator role: viewer@example.com is a viewer"],
    ["viewer", HOST_ADMIN_ROLE, "needs the admin role: viewer@example.com is a viewer"],
    ["operator", COMMAND_ROLE, null],
    ["operator", HOST_ADMIN_ROLE, "needs the admin role: operator@example.com is an operator"],
    ["admin", COMMAND_ROLE, null],
    ["admin", HOST_ADMIN_ROLE, null],
  ] as const)("a %s asking for what needs %s: %s", (role, needed, reason) => {
    expect(roleDenial(me(role), needed)).toBe(reason);
  });

  it("disables nothing while the identity is not known: the server still decides", () => {
    for (const needed of ROLES) expect(roleDenial(null, needed)).toBeNull();
  });
});
