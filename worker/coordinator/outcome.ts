/** The answer of a step that may be refused: the refusal vocabulary is worker/commands/rules.ts's. */
import type { Refusal } from "../commands/rules.ts";

export type Outcome<T> = ({ ok: true } & T) | Refusal;
