import { Hono } from "hono";
import { z } from "zod";
import { CommandId } from "../../common/protocol.ts";
import { coordinator } from "../coordinator.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { parseWith, readQuery } from "../validation.ts";

const OUTPUT_PAGE_CHUNKS = 1000;

const OutputQuery = z.object({
  after: z.coerce.number({ error: "after must be an integer ≥ -1" }).int("after must be an integer ≥ -1").min(-1, "after must be an integer ≥ -1").default(-1),
});

const notFound = (id: string) => new ApiError(404, "command_not_found", `no command ${id}`);

/** Commands live in the coordinator: read through it, their only home. */
export const commandsRoutes = new Hono<AppEnv>()
  .get("/:id", async (c) => {
    const id = parseWith(CommandId, c.req.param("id"), "invalid command id");
    const command = await coordinator(c.env).getCommand(id);
    if (!command) throw notFound(id);
    return c.json({ command });
  })
  .get("/:id/output", async (c) => {
    const id = parseWith(CommandId, c.req.param("id"), "invalid command id");
    const { after } = readQuery(c, OutputQuery);
    const output = await coordinator(c.env).commandOutput(id, after, OUTPUT_PAGE_CHUNKS);
    if (!output) throw notFound(id);
    return c.json({
      command: output.command,
      chunks: output.chunks,
      truncated: output.truncated,
      /** More chunks follow: ask again with after = the last seq. */
      more: output.chunks.length === OUTPUT_PAGE_CHUNKS,
    });
  });
