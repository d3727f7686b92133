import * as z from "zod";

/** Bumped when a message changes shape in a way an older peer cannot read. */
export const PROTOCOL_VERSION = 1;
/**
 * The oldest agent protocol the control plane still serves. An outdated agent
 * must always be able to poll, or it could never receive the pull-switch that
 * upgrades it.
 */
export const MIN_AGENT_PROTOCOL_VERSION = 1;

/** An agent's protocol version: any the control plane serves, so older agents keep working. */
export const AgentProtocolVersion = z
  .number()
  .int()
  .refine((v) => v >= MIN_AGENT_PROTOCOL_VERSION, `agent protocol is older than the oldest this control plane serves (${MIN_AGENT_PROTOCOL_VERSION}): upgrade the agent`)
  .refine((v) => v <= PROTOCOL_VERSION, `agent protocol is newer than this control plane's (${PROTOCOL_VERSION}): upgrade the control plane`);
