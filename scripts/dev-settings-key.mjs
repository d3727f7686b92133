// LOCAL ONLY. The SETTINGS_ENCRYPTION_KEY that `npm start`, the demo and the tests give the control plane
// when none is set. It is published in this repository, so it protects nothing: a deployed Worker gets its
// own with `openssl rand -base64 32 | wrangler secret put SETTINGS_ENCRYPTION_KEY` (docs/operations.md).
export const DEVELOPMENT_SETTINGS_ENCRYPTION_KEY = "wTs33HgD2MKsMdPE3s7rdYnUBxl/wg/01y8fQHgbLh8=";
