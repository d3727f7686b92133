export { FIRST_ROWS, MORE_ROWS } from "../../common/fleet-table.ts";
