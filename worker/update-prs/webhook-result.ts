/** What a webhook handler decided; `followUp` is the slow part that runs after the answer. */
export type HandlerResult =
  | { outcome: "processed"; followUp?: () => Promise<void> }
  | { outcome: "ignored"; reason: string };
