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
