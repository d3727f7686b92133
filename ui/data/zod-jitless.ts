// zod compiles its object parsers with `new Function` where it may. The dashboard's Content-Security-Policy
// refuses eval (docs/operations.md#security-headers), so zod's probe for it would be reported as a violation on
// every page load; jitless, zod parses without compiling, as under the CSP it has to anyway. Imported first by
// main.ts, so it is set before any schema parses.
import { config } from "zod";

config({ jitless: true });
