/** A deterministic number for a name, so ids stay the same across runs (FNV-1a). */
export function stableNumber(text: string, modulo: number): number {
  let hash = 2166136261;
  for (const ch of text) hash = Math.imul(hash ^ (ch.codePointAt(0) ?? 0), 16777619) >>> 0;
  return hash % modulo;
}

/** A GraphQL-style global node id, shaped like GitHub's newer ones (`PR_kwDO…`). */
export function nodeId(prefix: string, id: number | string): string {
  return `${prefix}_kwDO${Buffer.from(String(id)).toString("base64url")}`;
}
