// Vitest global setup: the Worker serves dist/ui, so build the dashboard once before any test starts it.
import { buildUi } from "../../scripts/build-ui.mjs";

export default async function setup(): Promise<void> {
  await buildUi();
}
