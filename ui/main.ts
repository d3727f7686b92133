// The dashboard's entry point: defining nf-app brings in every element it uses.
import "./nf-app.ts";
