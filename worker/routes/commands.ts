import { Hono } from "hono";
import { CommandId } from "../../common/protocol.ts";
import { getCommand, readCommandOutput, toCommandView } from "../db/commands.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { parseWith } from "../validation.ts";

const OUTPUT_PAGE_CHUNKS = 1000;

async function commandById(c: { get(key: "db"): AppEnv["Variables"]["db"] }, rawId: string) {
  const id = parseWith(CommandId, rawId, "invalid command id");
  const found = await getCommand(c.get("db"), id);
  if (!found) throw new ApiError(404, "command_not_found", `no command ${id}`);
  return found;
}

export const commandsRoutes = new Hono<AppEnv>()
  .get("/:id", async (c) => {
    const { record, hostName } = await commandById(c, c.req.param("id"));
    return c.json({ command: toCommandView(record, hostName) });
  })
  .get("/:id/output", async (c) => {
    const { record, hostName } = await commandById(c, c.req.param("id"));
    const after = Number(c.req.query("after") ?? -1);
    if (!Number.isInteger(after) || after < -1) throw new ApiError(400, "invalid_request", "after must be an integer ≥ -1");
    const chunks = await readCommandOutput(c.get("db"), record.id, after, OUTPUT_PAGE_CHUNKS);
    return c.json({
      command: toCommandView(record, hostName),
      chunks,
      truncated: record.outputTruncated,
      /** More chunks follow: ask again with after = the last seq. */
      more: chunks.length === OUTPUT_PAGE_CHUNKS,
    });
  });
