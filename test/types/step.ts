// Type-level tests, checked by `npm run typecheck` (tsc -p test), never run: a component's step can be
// neither async nor void-returning, because the shell only takes what returns a Step (worker/coordinator/step.ts).
import { expectTypeOf } from "vitest";
import { step, type Step, type StepOf } from "../../worker/coordinator/step.ts";

/** The shape of the shell's `run`: it takes a step, runs it and unwraps its value. */
declare function run<T>(body: StepOf<T>): T;

// A synchronous step that returns a Step: accepted, and its value comes out.
expectTypeOf(run(() => step(42))).toEqualTypeOf<number>();
const count = (n: number): Step<number> => step(n + 1);
expectTypeOf(run(() => count(1))).toEqualTypeOf<number>();

// @ts-expect-error an async step returns a Promise, which is no Step: the shell cannot await inside a step
run(async () => step(42));

// @ts-expect-error a step that returns nothing is no Step
run(() => {});

// @ts-expect-error nor is a plain value: only step() makes a Step
run(() => 42);

const asyncStep = async (n: number) => step(n);
// @ts-expect-error a component method declared async does not fit where a step is expected
const asStep: (n: number) => Step<number> = asyncStep;
void asStep;
