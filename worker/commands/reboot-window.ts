/**
 * A reboot goes out only inside the host's maintenance window (docs/hosts.md "Activation modes and
 * reboots"): a `reboot` command, and a switch that may reboot (`boot-then-reboot-if-needed`, its own or
 * the host's mode). The control plane decides; the agent only executes. `force` sends it anyway.
 * A rollout's switches are not judged here: the rollout starts a host only inside its window, unless
 * the person starting it chose to ignore the windows. Pure: the request and the settings in, a refusal
 * or null out.
 */
import { ACTIVATION_KINDS, type ActivationMode, type CommandKind, type MaintenanceWindow } from "../../common/protocol.ts";
import { refuse, type Refusal } from "../outcome.ts";
import { describeOpening, describeWindow, isOpen, nextOpeningOf, windowsForHost } from "../rollouts/windows.ts";

export interface RebootRequest {
  hostName: string;
  kind: CommandKind;
  /** The command's own activation mode, null for the host's. */
  activation: ActivationMode | null;
  /** The host's mode as its last report says; undefined when it has not said (an older agent: `switch`). */
  hostActivation: ActivationMode | undefined;
  force: boolean;
}

/** Whether this command may reboot the host. */
export function mayReboot(kind: CommandKind, activation: ActivationMode | null, hostActivation: ActivationMode | undefined): boolean {
  if (kind === "reboot") return true;
  return ACTIVATION_KINDS.has(kind) && (activation ?? hostActivation ?? "switch") === "boot-then-reboot-if-needed";
}

export function refuseRebootOutsideWindow(request: RebootRequest, allWindows: readonly MaintenanceWindow[], now: Date): Refusal | null {
  if (request.force || !mayReboot(request.kind, request.activation, request.hostActivation)) return null;
  const windows = windowsForHost(allWindows, request.hostName);
  if (isOpen(windows, now)) return null;
  const next = nextOpeningOf(windows, now);
  const when =
    next?.window != null
      ? `its next window opens ${describeOpening(next.window, next.at)} (${describeWindow(next.window)})`
      : `none of its windows (${windows.map(describeWindow).join("; ")}) opens again`;
  const what = request.kind === "reboot" ? "a reboot" : `a ${request.kind} in mode boot-then-reboot-if-needed may reboot it, which`;
  const instead =
    request.kind === "reboot"
      ? `send it with "force": true to reboot now`
      : `send it with "activation": "boot" to make the new system the boot default now, or with "force": true to allow the reboot now`;
  return refuse(409, "outside_maintenance_window", `${request.hostName} is outside its maintenance window: ${what} goes out only inside it; ${when}. ${capitalise(instead)}.`);
}

const capitalise = (text: string): string => text.charAt(0).toUpperCase() + text.slice(1);
