/** Elements report outcomes with a bubbling event; nf-app shows them. */
export type NoticeKind = "info" | "error";

export interface NoticeDetail {
  text: string;
  kind: NoticeKind;
}

export function notify(from: EventTarget, text: string, kind: NoticeKind = "info"): void {
  from.dispatchEvent(new CustomEvent<NoticeDetail>("nf-notify", { detail: { text, kind }, bubbles: true, composed: true }));
}

declare global {
  interface HTMLElementEventMap {
    "nf-notify": CustomEvent<NoticeDetail>;
  }
}
