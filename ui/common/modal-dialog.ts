/**
 * The one way the dashboard opens a dialog. Each dialog element renders one native `<dialog>` and
 * opens it through this controller: shown modal (the browser keeps focus inside it and closes it on
 * Escape), focus on the control to use first, focus given back to what had it once the dialog
 * closes, and the way it closed as the result.
 */
import type { ReactiveController, ReactiveControllerHost } from "lit";

type DialogHost = ReactiveControllerHost & HTMLElement & { readonly renderRoot: HTMLElement | DocumentFragment };

export interface OpenOptions {
  /** A selector in the element's shadow root: the control that gets focus (default: the browser's choice). */
  focus?: string;
  /** Empty the dialog's form first: a dialog opened again starts blank. */
  resetForm?: boolean;
}

/**
 * The value the dialog closed with: a `<form method="dialog">` button's `value`, or what `close(value)`
 * was given; "" when it was dismissed (Escape, Cancel, opened again, its element removed).
 */
export type DialogResult = Promise<string>;

/** What had focus, through the shadow roots (document.activeElement stops at the first host). */
function focusedElement(): HTMLElement | null {
  let element = document.activeElement;
  while (element?.shadowRoot?.activeElement) element = element.shadowRoot.activeElement;
  return element instanceof HTMLElement ? element : null;
}

export class ModalDialog implements ReactiveController {
  private readonly host: DialogHost;
  private readonly onClose: () => void;
  private opener: HTMLElement | null = null;
  private settle: ((result: string) => void) | null = null;

  /** `onClose`: what the element forgets when its dialog closes, however it closed. */
  constructor(host: DialogHost, onClose: () => void = () => {}) {
    this.host = host;
    this.onClose = onClose;
    host.addController(this);
  }

  hostDisconnected(): void {
    this.finish("");
  }

  get element(): HTMLDialogElement {
    const dialog = this.host.renderRoot.querySelector("dialog");
    if (dialog === null) throw new Error(`${this.host.localName} renders no <dialog>`);
    return dialog;
  }

  get isOpen(): boolean {
    return this.host.renderRoot.querySelector("dialog")?.open ?? false;
  }

  /**
   * Renders the element's new state, then shows its dialog. Resolves once it is shown, with
   * `{ result }`: the way it will close (wrapped, so that awaiting the opening does not wait for it).
   */
  async open(options: OpenOptions = {}): Promise<{ result: DialogResult }> {
    // Opened again while open: the earlier opening was dismissed.
    this.finish("");
    if (!this.isOpen) this.opener = focusedElement();
    const result = new Promise<string>((resolve) => {
      this.settle = resolve;
    });
    await this.host.updateComplete;
    const dialog = this.element;
    if (options.resetForm) this.host.renderRoot.querySelector("form")?.reset();
    dialog.returnValue = "";
    if (!dialog.open) {
      dialog.addEventListener("close", () => this.closed(dialog), { once: true });
      dialog.showModal();
    }
    if (options.focus !== undefined) this.host.renderRoot.querySelector<HTMLElement>(options.focus)?.focus();
    return { result };
  }

  /** Moves focus to `selector` once the element's new state is rendered (the dialog's next step). */
  async focus(selector: string): Promise<void> {
    await this.host.updateComplete;
    this.host.renderRoot.querySelector<HTMLElement>(selector)?.focus();
  }

  /** Closes the dialog with `result` (see DialogResult). */
  close(result = ""): void {
    const dialog = this.host.renderRoot.querySelector("dialog");
    if (dialog?.open) dialog.close(result);
  }

  private closed(dialog: HTMLDialogElement): void {
    const result = dialog.returnValue;
    dialog.returnValue = "";
    this.onClose();
    this.finish(result);
    const opener = this.opener;
    this.opener = null;
    // Back to where the person was, unless that is gone or they already moved on.
    const now = focusedElement();
    if (opener?.isConnected && (now === null || now === document.body || dialog.contains(now) || this.host.renderRoot.contains(now))) {
      opener.focus();
    }
  }

  private finish(result: string): void {
    const settle = this.settle;
    this.settle = null;
    settle?.(result);
  }
}
