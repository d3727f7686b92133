/**
 * A component's step: one synchronous piece of the coordinator's work, from a check to the writes that
 * depend on it. Its result is a `Step<T>`, a type of its own that only `step()` makes: a method
 * declared `async` returns a Promise and one that returns nothing returns void, and neither is a
 * Step, so neither compiles where the shell expects a step (test/types/step.ts proves it). That is
 * the no-await rule the design rests on (docs/architecture.md, "One writer, no races"), kept by the
 * types rather than by comments. The effects a step causes are in the outbox, written in the step.
 */
declare const stepBrand: unique symbol;

export interface Step<T> {
  readonly [stepBrand]: true;
  readonly value: T;
}

export function step(): Step<undefined>;
export function step<T>(value: T): Step<T>;
export function step<T>(value?: T): Step<T | undefined> {
  return { value } as Step<T | undefined>;
}

/** What the shell accepts as a step: a synchronous function whose result is a Step. */
export type StepOf<T> = () => Step<T>;
