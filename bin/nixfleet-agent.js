#!/usr/bin/env node
// The agent is TypeScript run by Node's type stripping (Node >= 22.18 / 24); no build step.
import { runCli } from "../agent/cli.ts";

runCli();
