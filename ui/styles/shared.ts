/**
 * Styles every element adopts: buttons, focus, links, the visually-hidden
 * helper. Colours come from the custom properties in index.html, which
 * follow prefers-color-scheme.
 */
import { css } from "lit";

export const sharedStyles = css`
  :host {
    color: var(--nf-text);
    font: inherit;
  }
  *,
  *::before,
  *::after {
    box-sizing: border-box;
  }
  a {
    color: var(--nf-link);
    text-decoration-thickness: 1px;
    text-underline-offset: 2px;
  }
  a:hover {
    text-decoration-thickness: 2px;
  }
  :focus-visible {
    outline: 2px solid var(--nf-focus);
    outline-offset: 2px;
    border-radius: 4px;
  }
  .visually-hidden {
    position: absolute !important;
    /* Not left where it stands: inside a scrolling table it would widen the page. */
    top: 0;
    left: 0;
    width: 1px;
    height: 1px;
    padding: 0;
    margin: -1px;
    overflow: hidden;
    clip: rect(0 0 0 0);
    white-space: nowrap;
    border: 0;
  }
  .muted {
    color: var(--nf-text-muted);
  }
  code,
  .mono {
    font-family: var(--nf-mono);
    font-size: 0.92em;
  }
  button {
    font: inherit;
    color: inherit;
  }
  .btn {
    display: inline-flex;
    align-items: center;
    justify-content: center;
    gap: 0.4em;
    min-height: 2.25rem;
    padding: 0.35rem 0.85rem;
    border: 1px solid var(--nf-border-strong);
    border-radius: var(--nf-radius-sm);
    background: var(--nf-surface);
    color: var(--nf-text);
    font-weight: 500;
    line-height: 1.2;
    cursor: pointer;
    text-decoration: none;
    white-space: nowrap;
  }
  .btn:hover:not(:disabled) {
    background: var(--nf-surface-2);
  }
  .btn:disabled {
    opacity: 0.5;
    cursor: not-allowed;
  }
  .btn.primary {
    background: var(--nf-accent);
    border-color: var(--nf-accent);
    color: var(--nf-on-accent);
  }
  .btn.primary:hover:not(:disabled) {
    background: var(--nf-accent-hover);
  }
  .btn.danger {
    background: var(--nf-danger);
    border-color: var(--nf-danger);
    color: #fff;
  }
  .btn.danger:hover:not(:disabled) {
    filter: brightness(1.08);
  }
  .btn.small {
    min-height: 1.85rem;
    padding: 0.2rem 0.6rem;
    font-size: 0.875rem;
  }
  .icon-btn {
    display: inline-grid;
    place-items: center;
    width: 2.25rem;
    height: 2.25rem;
    padding: 0;
    border: 1px solid transparent;
    border-radius: var(--nf-radius-sm);
    background: transparent;
    color: var(--nf-text-muted);
    font-size: 1.15rem;
    line-height: 1;
    cursor: pointer;
  }
  .icon-btn:hover {
    background: var(--nf-surface-2);
    color: var(--nf-text);
    border-color: var(--nf-border);
  }
  .card {
    background: var(--nf-surface);
    border: 1px solid var(--nf-border);
    border-radius: var(--nf-radius);
  }
  .error-text {
    color: var(--nf-red);
  }
  .pill {
    display: inline-flex;
    align-items: center;
    gap: 0.3em;
    padding: 0.05rem 0.5rem;
    border-radius: 999px;
    font-size: 0.8125rem;
    font-weight: 500;
    border: 1px solid transparent;
    white-space: nowrap;
  }
  .tone-good {
    color: var(--nf-green);
    background: var(--nf-green-bg);
  }
  .tone-bad {
    color: var(--nf-red);
    background: var(--nf-red-bg);
  }
  .tone-busy {
    color: var(--nf-blue);
    background: var(--nf-blue-bg);
  }
  .tone-warn {
    color: var(--nf-yellow);
    background: var(--nf-yellow-bg);
  }
  .tone-muted {
    color: var(--nf-gray);
    background: var(--nf-gray-bg);
  }
`;

/** Colours per compartment state, as classes `.state-green` … on an element. */
export const stateColours = css`
  .state-green {
    --state-fg: var(--nf-green);
    --state-bg: var(--nf-green-bg);
  }
  .state-yellow {
    --state-fg: var(--nf-yellow);
    --state-bg: var(--nf-yellow-bg);
  }
  .state-red {
    --state-fg: var(--nf-red);
    --state-bg: var(--nf-red-bg);
  }
  .state-blue {
    --state-fg: var(--nf-blue);
    --state-bg: var(--nf-blue-bg);
  }
  .state-gray {
    --state-fg: var(--nf-gray);
    --state-bg: var(--nf-gray-bg);
  }
`;
