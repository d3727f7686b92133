/**
 * What the agent refuses to start over, and the token file it reads before it polls (and again when the control
 * plane answers 401): each refusal says what the operator has to fix.
 */
import * as fs from "node:fs/promises";

/** Why the agent refuses to start; the message tells the operator what to fix. */
export class AgentStartError extends Error {
  override name = "AgentStartError";
}

/** Reads the agent token; the message says what to fix when it cannot. */
export async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new AgentStartError(`token file ${file} does not exist: put the host's agent token (from the dashboard) in it`);
    }
    throw new AgentStartError(`cannot read token file ${file}: ${code ?? String(error)}`);
  }
  const token = text.trim();
  if (token === "") throw new AgentStartError(`token file ${file} is empty: put the host's agent token (from the dashboard) in it`);
  return token;
}
