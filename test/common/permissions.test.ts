import { describe, expect, it } from "vitest";
import { ROLES, type Role } from "../../common/protocol.ts";
import { COMMAND_ROLE, HOST_ADMIN_ROLE, roleDenial, roleNote } from "../../common/permissions.ts";

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

describe("roleNote", () => {
  it("says what a viewer and an operator may not do, and nothing for an admin or an unknown identity", () => {
    expect(roleNote(me("viewer"))).toBe("viewer@example.com · viewer: read only");
    expect(roleNote(me("operator"))).toBe("operator@example.com · operator: runs commands, cannot add or remove hosts");
    expect(roleNote(me("admin"))).toBeNull();
    expect(roleNote(null)).toBeNull();
  });
});
