/** The Settings page's form fields, shared by the page and its editors of windows and channels. */
import { css } from "lit";

export const settingsFormStyles = css`
  fieldset {
    margin: 0;
    padding: 0;
    border: 0;
    min-width: 0;
  }
  .fields {
    display: grid;
    grid-template-columns: repeat(auto-fill, minmax(min(14rem, 100%), 1fr));
    gap: 0.9rem 1.25rem;
  }
  .field {
    display: grid;
    /* A select as wide as its longest option still fits a phone. */
    grid-template-columns: minmax(0, 1fr);
    gap: 0.3rem;
    align-content: start;
    font-size: 0.875rem;
  }
  .field > span:first-child {
    font-weight: 600;
  }
  .check {
    display: flex;
    align-items: flex-start;
    gap: 0.5rem;
    font-size: 0.875rem;
  }
  .check input {
    margin-top: 0.2rem;
  }
  input:not([type="checkbox"]),
  select {
    min-height: 2.1rem;
    padding: 0.3rem 0.5rem;
    border: 1px solid var(--nf-border-strong);
    border-radius: var(--nf-radius-sm);
    background: var(--nf-surface);
    color: var(--nf-text);
    font: inherit;
    max-width: 100%;
  }
  [aria-invalid="true"] {
    border-color: var(--nf-red) !important;
  }
  .field-error {
    color: var(--nf-red);
    font-size: 0.8125rem;
  }
  .hint {
    color: var(--nf-text-muted);
    font-size: 0.8125rem;
  }
  .row {
    display: grid;
    gap: 0.75rem;
    padding: 0.85rem;
    border: 1px solid var(--nf-border);
    border-radius: var(--nf-radius-sm);
    background: var(--nf-surface-2);
  }
  .row-head {
    display: flex;
    align-items: center;
    gap: 0.5rem;
  }
  .row-head .grow {
    flex: 1;
    font-weight: 600;
  }
  .days,
  .events {
    display: flex;
    flex-wrap: wrap;
    gap: 0.35rem 0.9rem;
  }
`;
