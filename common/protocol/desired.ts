import * as z from "zod";
import { HostName, Sha1 } from "./hosts.ts";
import { StorePath } from "./reports.ts";

// ---------------------------------------------------------------------------
// CI ⇄ worker: desired systems evaluated by CI, for hosts too small to evaluate

/** `POST /api/desired`, authenticated with the CI token (it can do nothing else). */
export const DesiredPublication = z
  .object({
    commit: Sha1,
    hosts: z.record(HostName, StorePath).refine((hosts) => Object.keys(hosts).length > 0, "name at least one host"),
  })
  .strict();
export type DesiredPublication = z.infer<typeof DesiredPublication>;

/** `GET /api/ci-token`: when the CI token in force was created and by whom (never the token); null when there is none. */
export const CiTokenStatus = z.object({
  ciToken: z.object({ createdAt: z.string(), createdBy: z.string() }).nullable(),
});
export type CiTokenStatus = z.infer<typeof CiTokenStatus>;

/** `POST /api/ci-token`: the new token, shown once (the old one is refused from then on). */
export const CiTokenCreated = z.object({
  token: z.string(),
  ciToken: z.object({ createdAt: z.string(), createdBy: z.string() }),
});
export type CiTokenCreated = z.infer<typeof CiTokenCreated>;
