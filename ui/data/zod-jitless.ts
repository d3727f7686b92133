// zod compiles its object parsers with `new Function` where it may. The dashboard's Content-Security-Policy
// refuses eval (docs/operations.md#security-headers), so zod's probe for it would be reported as a violation on
// every page load; jitless, zod parses without compiling, as under the CSP it has to anyway. zod is only in the
// lazily loaded chunks, and it keeps its configuration on globalThis.__zod_globalConfig (taking the object it
// finds there, so that every copy of zod shares one): set here, by main.ts, before any zod module is loaded,
// without loading zod for it.
const zodConfigKey = "__zod_globalConfig";
const holder = globalThis as unknown as Record<typeof zodConfigKey, { jitless?: boolean } | undefined>;
holder[zodConfigKey] = { ...holder[zodConfigKey], jitless: true };
