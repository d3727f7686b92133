/** A section of the host page (its report, its commands, its generations): a block under a ruled heading. */
import { css } from "lit";

export const hostSectionStyles = css`
  :host {
    display: block;
  }
  h2 {
    margin: 0;
    padding: 0.7rem 0.9rem;
    font-size: 1rem;
    border-bottom: 1px solid var(--nf-border);
  }
`;
