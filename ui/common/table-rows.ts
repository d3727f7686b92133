/**
 * Rows in the fleet table's first frame. A larger fleet's other rows follow,
 * MORE_ROWS a task after each frame, so the first screen does not wait for
 * a thousand rows to be built (bench/ui.ts); the page stays answerable while
 * they come, and then holds every row (find in page, select all).
 */
export const FIRST_ROWS = 100;
export const MORE_ROWS = 300;
