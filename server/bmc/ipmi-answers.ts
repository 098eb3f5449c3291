/**
 * What a failed `ipmitool -I lanplus -v` run means. The patterns are the lines
 * ipmitool 1.8.19 really prints against OpenIPMI's ipmi_sim and pyghmi's fake
 * BMC (test/bmc/ipmi-fallback.test.ts keeps them honest); RAKP and open-session
 * status texts are IPMI v2.0 table 13-15.
 */

export type IpmiFailureKind =
  /** The BMC refused who we are: another suite would only add a failed login toward a lockout. */
  | 'auth'
  /** Get Channel Authentication Capabilities got no answer: nothing suite-specific was tried yet. */
  | 'no-answer'
  /** The RMCP+ session could not be set up for another reason: the next suite may work. */
  | 'session'
  /** A session existed and the command itself failed. */
  | 'command';

export interface IpmiFailure {
  kind: IpmiFailureKind;
  /** The one line that says why, without ipmitool's generic framing. */
  answer: string;
}

// ipmitool's last line for every session setup failure, whatever the cause.
const SESSION_FAILED = /Unable to establish IPMI v2 \/ RMCP\+ session/i;
// Sent before the open-session request, with the same packet for every suite.
const NO_ANSWER = /Get Auth Capabilities error|Error issuing Get Channel Authentication|No response from remote controller/i;
// "RAKP 2 HMAC is invalid": the BMC's proof computed with our password does not
// match (wrong password). The rest are RAKP status codes 0x0a, 0x0c, 0x0d, 0x0f.
const AUTH_REJECTED = /RAKP \d HMAC is invalid|unauthorized name|invalid name length|unauthorized role or privilege|invalid integrity check value|Insufficient privilege/i;
// Lines that frame the failure but say nothing about it.
const NOISE = /^(Loading IANA PEN Registry|Unable to establish IPMI v2 \/ RMCP\+ session|Close Session command failed)/i;

function meaningfulLines(output: string): string[] {
  const lines = output.split('\n')
    .map((l) => l.replace(/^>\s*/, '').replace(/^Error:\s*/, '').trim())
    .filter((l) => l !== '' && !NOISE.test(l));
  return [...new Set(lines)];
}

export function classifyIpmitoolFailure(stdout: string, stderr: string): IpmiFailure {
  const output = `${stderr}\n${stdout}`;
  const lines = meaningfulLines(output);
  const auth = lines.find((l) => AUTH_REJECTED.test(l));
  if (auth) return { kind: 'auth', answer: auth };
  if (NO_ANSWER.test(output)) return { kind: 'no-answer', answer: lines.find((l) => NO_ANSWER.test(l)) ?? 'no answer' };
  if (SESSION_FAILED.test(output)) {
    // The first specific line is the cause; later ones are ipmitool's follow-ups.
    return { kind: 'session', answer: lines[0] ?? 'Unable to establish IPMI v2 / RMCP+ session' };
  }
  return { kind: 'command', answer: lines[lines.length - 1] ?? '' };
}
