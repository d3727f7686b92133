/**
 * A detached job as a launchd job of its own (macOS: nix-darwin, Home Manager): the safety net's
 * watchdog must outlive the agent's own launchd service, which the activation it watches restarts.
 * launchd has no transient jobs like systemd-run; a property list loaded with `launchctl bootstrap`
 * is one (`launchctl submit` would keep it alive, restarting a watchdog that ended on purpose).
 * Pure: the plist and the argv are checked by tests on a machine without launchd.
 */
import * as path from "node:path";

/** The parts of runner.ts's DetachedJobSpec a launchd job is made of. */
interface DetachedJobSpec {
  name: string;
  argv: readonly string[];
  cwd: string;
  logFile: string;
  exitFile: string;
}

/** Where the job is loaded: the system domain for root (nix-darwin), the user's GUI domain otherwise (Home Manager). */
export function launchdDomain(uid: number): string {
  return uid === 0 ? "system" : `gui/${uid}`;
}

/** The label: reverse-DNS like every launchd job, unique per job (a finished one stays loaded until it is booted out). */
export const launchdLabel = (spec: Pick<DetachedJobSpec, "name">): string => `org.nixfleet.${spec.name}`;

/** The plist beside the job's exit file. */
export const launchdPlistPath = (spec: Pick<DetachedJobSpec, "name" | "exitFile">): string => path.join(path.dirname(spec.exitFile), `${spec.name}.plist`);

/**
 * The job's command: the wrapper that logs and publishes the exit status, then unloads the job so
 * nothing is left loaded (in the background: booting out a running job ends it, and the status is out
 * by then).
 */
export const LAUNCHD_WRAPPER_SCRIPT = [
  'log=$1; exitf=$2; target=$3; shift 3',
  '"$@" >>"$log" 2>&1 </dev/null',
  "code=$?",
  'printf "%s\\n" "$code" >"$exitf.tmp" && mv -f "$exitf.tmp" "$exitf"',
  '(sleep 1; launchctl bootout "$target" >/dev/null 2>&1) &',
].join("\n");

/** Variables the job gets from the agent (launchd passes none of the caller's environment). */
export const LAUNCHD_PASSED_ENV = ["PATH", "HOME", "USER", "LANG", "NIX_PATH", "NIX_CONFIG", "NIX_REMOTE", "TZDIR"];

/**
 * The property list: run once at load, never restarted (KeepAlive false), its process group left alone
 * when the main process ends, at the agent's own nice value. Its values (NIX_CONFIG may hold tokens)
 * are in a file only the agent's user reads, never on a command line.
 */
export function launchdPlist(spec: DetachedJobSpec, domain: string, env: NodeJS.ProcessEnv, nice = 0): string {
  const target = `${domain}/${launchdLabel(spec)}`;
  const argv = ["/bin/sh", "-c", LAUNCHD_WRAPPER_SCRIPT, "nixfleet-job", spec.logFile, spec.exitFile, target, ...spec.argv];
  const passed = LAUNCHD_PASSED_ENV.filter((name) => env[name] !== undefined);
  const entries: string[] = [
    key("Label", string(launchdLabel(spec))),
    key("ProgramArguments", `<array>\n${argv.map((arg) => `      ${string(arg)}`).join("\n")}\n    </array>`),
    key("WorkingDirectory", string(spec.cwd)),
    key("RunAtLoad", "<true/>"),
    key("KeepAlive", "<false/>"),
    key("AbandonProcessGroup", "<true/>"),
    key("StandardOutPath", string(spec.logFile)),
    key("StandardErrorPath", string(spec.logFile)),
    ...(nice !== 0 ? [key("Nice", `<integer>${nice}</integer>`)] : []),
    ...(passed.length > 0
      ? [key("EnvironmentVariables", `<dict>\n${passed.map((name) => `      <key>${xml(name)}</key>${string(env[name] ?? "")}`).join("\n")}\n    </dict>`)]
      : []),
  ];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    "  <dict>",
    ...entries.map((entry) => `    ${entry}`),
    "  </dict>",
    "</plist>",
    "",
  ].join("\n");
}

export const launchctlBootstrapArgv = (domain: string, plist: string): string[] => ["launchctl", "bootstrap", domain, plist];
export const launchctlPrintArgv = (target: string): string[] => ["launchctl", "print", target];
export const launchctlBootoutArgv = (target: string): string[] => ["launchctl", "bootout", target];

/** Whether `launchctl print`'s answer describes a running job ("state = running"). */
export function launchdJobRunning(printed: { exitCode: number | null; stdout: string }): boolean {
  return printed.exitCode === 0 && /^\s*state = running\s*$/m.test(printed.stdout);
}

const key = (name: string, value: string) => `<key>${xml(name)}</key>${value}`;
const string = (value: string) => `<string>${xml(value)}</string>`;
function xml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
