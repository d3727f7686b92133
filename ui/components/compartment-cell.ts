/**
 * One compartment of one host in the fleet table: icon, word and colour, the
 * reason as tooltip and accessible description (title). A plain button in the
 * table's own shadow root, as few elements as possible: 100 hosts make 500
 * (the icon is drawn by the state's class, not an element of its own).
 * Clicking it opens the compartment's action menu (the table listens).
 * The markup is in the table's row template (nf-fleet-table.ts): one template
 * per row rather than ten nested ones makes the first render of 100 rows cheaper.
 */
import { css, unsafeCSS } from "lit";
import type { Compartment, CompartmentName } from "../../common/protocol.ts";
import { COMPARTMENT_TITLES, STATE_ICONS, describeCompartment, stateDisplay } from "../common/compartment-display.ts";

/** What one cell shows and says; the fleet table writes it into its row's one template. */
export interface CompartmentCellView {
  classes: string;
  /** The reason, as tooltip and accessible description. */
  title: string;
  /** Host, compartment and state: the button's name. */
  ariaLabel: string;
  label: string;
  stale: boolean;
}

export function compartmentCell(host: string, name: CompartmentName, compartment: Compartment, options: { glow: boolean; note: string }): CompartmentCellView {
  const { label } = stateDisplay(name, compartment.state);
  return {
    classes: `cell state-${compartment.state}${compartment.stale ? " stale" : ""}${options.glow ? " glow" : ""}`,
    title: describeCompartment(compartment, options.note || undefined),
    // The name (host, compartment, state) in aria-label and the reason in title, which the
    // browser exposes as the description: no hidden text, which 500 cells would pay for in layout.
    ariaLabel: `${host} ${COMPARTMENT_TITLES[name]}: ${label}${compartment.stale ? " (last known)" : ""}`,
    label,
    stale: compartment.stale,
  };
}

/** Each state's icon, drawn before the word; "/ ''" keeps it out of the accessible text (the word says it). */
const stateIcons = unsafeCSS(
  Object.entries(STATE_ICONS)
    .map(([state, icon]) => `.cell.state-${state}::before{content:${JSON.stringify(icon)} / ""}`)
    .join(""),
);

/** Used with `stateColours` from styles/shared.ts. */
export const compartmentCellStyles = [
  stateIcons,
  css`
  .cell {
    display: block;
    width: 100%;
    min-height: 2rem;
    padding: 0.25rem 0.4rem;
    overflow: hidden;
    border: 1px solid color-mix(in srgb, var(--state-fg) 35%, transparent);
    border-radius: var(--nf-radius-sm);
    background: var(--state-bg);
    color: var(--state-fg);
    font-size: 0.8125rem;
    font-weight: 600;
    line-height: 1.3rem;
    text-align: left;
    text-overflow: ellipsis;
    white-space: nowrap;
    cursor: pointer;
    transition: filter 120ms;
  }
  .cell:hover {
    filter: brightness(0.96) saturate(1.15);
  }
  .cell::before {
    display: inline-block;
    width: 1.15rem;
    height: 1.15rem;
    margin-right: 0.35rem;
    border-radius: 50%;
    background: var(--state-fg);
    color: var(--nf-surface);
    font-size: 0.72rem;
    font-weight: 800;
    line-height: 1.15rem;
    text-align: center;
    vertical-align: top;
    margin-top: 0.075rem;
  }
  .cell.state-blue::before {
    animation: spin 1.6s linear infinite;
  }
  /* Faded by its plain background and dashed border, not by opacity: the word keeps its contrast. */
  .cell.stale {
    border-style: dashed;
    background: var(--nf-surface);
  }
  .cell .stale-tag {
    display: block;
    font-size: 0.625rem;
    font-weight: 500;
    line-height: 0.8rem;
    color: var(--nf-text);
  }
  .cell.glow {
    animation: glow 2.4s ease-in-out infinite;
  }
  @keyframes glow {
    0%,
    100% {
      box-shadow: 0 0 0 0 color-mix(in srgb, var(--nf-yellow) 0%, transparent);
    }
    50% {
      box-shadow: 0 0 0 4px color-mix(in srgb, var(--nf-yellow) 45%, transparent);
    }
  }
  @keyframes spin {
    to {
      transform: rotate(360deg);
    }
  }
  @media (prefers-reduced-motion: reduce) {
    .cell.glow {
      animation: none;
      box-shadow: 0 0 0 3px color-mix(in srgb, var(--nf-yellow) 45%, transparent);
    }
    .cell.state-blue::before {
      animation: none;
    }
  }
  @media (max-width: 760px) {
    /* A card's five cells share one row: name, icon and word stacked. */
    .cell {
      display: flex;
      flex-direction: column;
      align-items: center;
      padding: 0.3rem 0.1rem;
      font-size: 0.65rem;
      letter-spacing: -0.01em;
      line-height: 1.1rem;
      text-align: center;
    }
    .cell::after {
      content: attr(data-title);
      order: -1;
      display: block;
      color: var(--nf-text-muted);
      font-size: 0.625rem;
      font-weight: 500;
      letter-spacing: 0.03em;
      text-transform: uppercase;
    }
    .cell::before {
      display: block;
      margin: 0.1rem auto;
    }
    .cell .stale-tag {
      display: none;
    }
  }
`,
];
