/**
 * common/narinfo.ts against a narinfo that Debian's Nix 2.8 wrote (`nix copy --to file://…?secret-key=…`):
 * the fingerprint it builds is the one Nix signed, byte for byte, and bad narinfos are refused naming the field.
 */
import { createPublicKey, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { NarInfoError, narInfoFingerprint, parseNarInfo, splitNamed, storePathHash } from "../../common/narinfo.ts";

/** Written by Nix 2.8 for a path that refers to another; signed by the key below. */
const FROM_NIX = `StorePath: /nix/store/kdkpkfp897j8mmj6nalcjrj6q0kv9vnk-cache-e2e-top
URL: nar/1fv8q96hx7sc89xdrfyvn5hzidmwlzm3j7cipll4pkwhw0ppqah7.nar
Compression: none
FileHash: sha256:1fv8q96hx7sc89xdrfyvn5hzidmwlzm3j7cipll4pkwhw0ppqah7
FileSize: 176
NarHash: sha256:1fv8q96hx7sc89xdrfyvn5hzidmwlzm3j7cipll4pkwhw0ppqah7
NarSize: 176
References: iq56kwqyj1gbl6g0pdp2mh0k2j6j099n-cache-e2e-big
Deriver: v9q1q9al3hb20hzq9qs51s0p2hsdhaa5-cache-e2e-top.drv
Sig: e2e-builder-1:QhkS5Y1RvqGlngzs1tCIqYFYm4o2+BQyc6HXuM0W2o0aui1iTekpXRZ3AnLzdkeRQGy65j94245gLTJIeSOgDg==
`;
const PUBLIC_KEY = "e2e-builder-1:Ol1PA5sbd9J7mDk4Nt1dX9rdfTtK1YnhHQ5fLzhx9Sw=";

const verifies = (fingerprint: string, signature: string) => {
  const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(splitNamed(PUBLIC_KEY).base64, "base64").toString("base64url") }, format: "jwk" });
  return verify(null, Buffer.from(fingerprint), key, Buffer.from(splitNamed(signature).base64, "base64"));
};

describe("narinfo", () => {
  it("parses Nix's narinfo and builds the fingerprint Nix signed", () => {
    const info = parseNarInfo(FROM_NIX);
    expect(info).toMatchObject({ narSize: 176, fileSize: 176, references: ["iq56kwqyj1gbl6g0pdp2mh0k2j6j099n-cache-e2e-big"], sigs: [expect.stringMatching(/^e2e-builder-1:/)] });
    expect(storePathHash(info.storePath)).toBe("kdkpkfp897j8mmj6nalcjrj6q0kv9vnk");
    const fingerprint = narInfoFingerprint(info);
    expect(fingerprint).toBe(
      "1;/nix/store/kdkpkfp897j8mmj6nalcjrj6q0kv9vnk-cache-e2e-top;sha256:1fv8q96hx7sc89xdrfyvn5hzidmwlzm3j7cipll4pkwhw0ppqah7;176;/nix/store/iq56kwqyj1gbl6g0pdp2mh0k2j6j099n-cache-e2e-big",
    );
    expect(verifies(fingerprint, info.sigs[0]!)).toBe(true);
    expect(verifies(fingerprint.replace(";176;", ";177;"), info.sigs[0]!)).toBe(false);
  });

  it("sorts the references as full store paths, whatever order the file lists them in", () => {
    const info = parseNarInfo(FROM_NIX.replace(/^References: .*$/m, "References: zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-z 00000000000000000000000000000000-a"));
    expect(narInfoFingerprint(info).split(";")[4]).toBe("/nix/store/00000000000000000000000000000000-a,/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-z");
  });

  it.each([
    [FROM_NIX.replace(/^NarSize: .*\n/m, ""), "NarSize: missing"],
    [FROM_NIX.replace(/^URL: .*$/m, "URL: https://elsewhere.example/x.nar"), "URL: must be nar/<file>"],
    [FROM_NIX.replace(/^NarHash: .*$/m, "NarHash: sha256-AAAA"), "NarHash: NarHash must be sha256:<base-32>"],
    [FROM_NIX.replace(/^StorePath: .*$/m, "StorePath: /gnu/store/kdkpkfp897j8mmj6nalcjrj6q0kv9vnk-x"), "StorePath: not a store path under /nix/store"],
    [`${FROM_NIX}NarSize: 1\n`, "NarSize is given twice"],
    [FROM_NIX.replace(/^References: .*$/m, "References: ../../etc"), "References: not a store path name"],
    ["StorePath /nix/store/x", "line 1 is not"],
  ])("refuses a bad narinfo, naming what is wrong (%#)", (text, message) => {
    expect(() => parseNarInfo(text)).toThrow(NarInfoError);
    expect(() => parseNarInfo(text)).toThrow(message);
  });

  it("ignores keys it does not know, as Nix does", () => {
    expect(parseNarInfo(`${FROM_NIX}System: x86_64-linux\n`).storePath).toBe("/nix/store/kdkpkfp897j8mmj6nalcjrj6q0kv9vnk-cache-e2e-top");
  });
});
