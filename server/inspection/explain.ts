import type { WaitFacts } from './history.js';
import type { FlowWaitState } from './flow.js';

/**
 * What the PXE services saw of one machine since a time (from the boot log).
 * Undefined = not observable here (e.g. DHCP served by another server).
 */
export interface BootSteps {
  dhcpRequest?: boolean;
  addressOffered?: boolean;
  /** An ACK followed (undefined when not observable, as above). */
  addressAcknowledged?: boolean;
  bootScriptFetched: boolean;
  /** It asked for its boot script while ospd had no ramdisk to serve. */
  ramdiskMissing?: boolean;
  ramdiskFetched: boolean;
}

/**
 * The narrow view of the PXE boot log the flow needs. ospd backs it with the
 * boot_log table once the PXE services record there; without it the
 * explanation says the boot log was not available.
 */
export interface BootHistory {
  stepsSince(macs: string[], sinceIso: string): Promise<BootSteps>;
}

export interface TimeoutContext {
  waitState: FlowWaitState;
  timeoutMs: number;
  macs: string[];
  facts: WaitFacts;
  boot?: BootSteps;
  /** Why machines may not reach the address ospd advertises (server/advertise.ts). */
  advertiseProblems?: string[];
}

function duration(ms: number): string {
  if (ms >= 120_000) return `${Math.round(ms / 60_000)} min`;
  return `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))} s`;
}

function list(macs: string[]): string {
  return macs.length ? macs.join(', ') : 'any of its NICs (the node has no ports registered)';
}

/**
 * Names the first step of the boot that never happened, from the facts
 * recorded during the wait: boot log (DHCP, script, ramdisk), then the agent's
 * lookup, command stream and report. The most common question after a failed
 * inspection is "where did it stop?"; this answers it.
 */
export function explainTimeout(c: TimeoutContext): string {
  const message = explainSteps(c);
  // A machine that never called back may simply have been sent where nothing listens.
  if (c.facts.lookups > 0 || !c.advertiseProblems?.length) return message;
  return `${message}; note: ${c.advertiseProblems.join('; ')}`;
}

function explainSteps(c: TimeoutContext): string {
  const after = `after ${duration(c.timeoutMs)} in '${c.waitState}'`;
  const work = c.waitState === 'inspect wait' ? 'sent no inventory' : c.waitState === 'clean wait' ? 'never reported the cleaning result' : 'never reported the deploy result';
  const { facts, boot } = c;
  if (facts.lookups === 0) {
    if (boot) {
      if (boot.dhcpRequest === false) return `timed out ${after}: no DHCP request from ${list(c.macs)} (is the machine powered on, set to PXE boot, and on the provisioning network?)`;
      if (boot.addressOffered === false) return `timed out ${after}: DHCP requests from ${list(c.macs)} were never answered with an address`;
      // Seen in the lab: offers logged, yet the machine never sent a REQUEST (the offer never reached it).
      if (boot.addressAcknowledged === false && !boot.bootScriptFetched) {
        return `timed out ${after}: ospd offered ${list(c.macs)} an address but no REQUEST/ACK followed (the offer did not reach the machine, or it took another DHCP server's)`;
      }
      if (boot.ramdiskMissing) {
        return `timed out ${after}: ${list(c.macs)} asked for its boot script but ospd has no ramdisk in place (see 'ospctl pxe status'; build it with 'osp-image build -t ramdisk')`;
      }
      if (!boot.bootScriptFetched) {
        return boot.dhcpRequest === undefined
          ? `timed out ${after}: ${list(c.macs)} never fetched the boot script (ospd does not serve DHCP here, so whether it got an address is unknown)`
          : `timed out ${after}: got an address but never fetched the boot script`;
      }
      if (!boot.ramdiskFetched) return `timed out ${after}: fetched the boot script but never the ramdisk`;
      return `timed out ${after}: ramdisk fetched but the agent never called back`;
    }
    return `timed out ${after}: the ramdisk agent never called back (no lookup from ${list(c.macs)}; no PXE boot log available to say how far the boot got)`;
  }
  if (facts.streams === 0) return `timed out ${after}: the agent looked up its node but never opened its command stream`;
  const progress = facts.lastProgress ? ` (last progress: ${facts.lastProgress})` : '';
  return `timed out ${after}: agent connected but ${work}${progress}`;
}
