import { css } from "lit";

/** The native <dialog> (modal, Escape closes, focus kept inside), styled once. */
export const dialogStyles = css`
  dialog {
    width: min(34rem, calc(100vw - 2rem));
    max-height: calc(100vh - 2rem);
    padding: 0;
    border: 1px solid var(--nf-border-strong);
    border-radius: var(--nf-radius-lg);
    background: var(--nf-surface);
    color: var(--nf-text);
    box-shadow: var(--nf-shadow-lg);
  }
  dialog.wide {
    width: min(44rem, calc(100vw - 2rem));
  }
  dialog::backdrop {
    background: rgb(10 14 20 / 0.45);
  }
  .dialog-body {
    display: grid;
    /* As wide as the dialog and no wider: a store path in a build's error breaks instead of running off a phone. */
    grid-template-columns: minmax(0, 1fr);
    overflow-wrap: anywhere;
    gap: 1rem;
    padding: 1.25rem 1.4rem 1.4rem;
  }
  h2 {
    margin: 0;
    font-size: 1.15rem;
    line-height: 1.3;
  }
  p {
    margin: 0;
    line-height: 1.5;
  }
  .actions {
    display: flex;
    flex-wrap: wrap;
    justify-content: flex-end;
    gap: 0.5rem;
    margin-top: 0.25rem;
  }
  .host-list {
    display: flex;
    flex-wrap: wrap;
    gap: 0.35rem;
    margin: 0;
    padding: 0;
    list-style: none;
  }
  .host-list li {
    padding: 0.1rem 0.5rem;
    border-radius: 999px;
    background: var(--nf-surface-2);
    border: 1px solid var(--nf-border);
    font-family: var(--nf-mono);
    font-size: 0.8125rem;
  }
  label {
    display: grid;
    gap: 0.3rem;
    font-weight: 500;
  }
  .field-hint {
    font-size: 0.8125rem;
    font-weight: 400;
    color: var(--nf-text-muted);
  }
  input,
  select {
    font: inherit;
    min-height: 2.4rem;
    padding: 0.35rem 0.6rem;
    border: 1px solid var(--nf-border-strong);
    border-radius: var(--nf-radius-sm);
    background: var(--nf-bg);
    color: var(--nf-text);
  }
  input[aria-invalid="true"] {
    border-color: var(--nf-red);
  }
  .form-error {
    padding: 0.6rem 0.8rem;
    border-radius: var(--nf-radius-sm);
    background: var(--nf-red-bg);
    color: var(--nf-red);
    font-size: 0.875rem;
  }
`;
