// The dashboard's entry point: defining nf-app brings in every element it uses.
import "./data/zod-jitless.ts";
import "./nf-app.ts";

// Every module above has been evaluated (schemas built, elements defined): bench/ui.ts splits the first paint here.
performance.mark("nf-modules-evaluated");
