/** A commit SHA as people read it in messages: its first 7 hex digits, as git and GitHub show it. */
export const shortSha = (sha: string): string => sha.slice(0, 7);
