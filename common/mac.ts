/**
 * MAC addresses. osp holds and compares them in one form, lower-case and
 * colon-separated (52:54:00:12:34:56), because node ports, DHCP leases, boot
 * script URLs and MQTT identities must match byte for byte.
 */

/** What an operator is told a MAC looks like. */
export const MAC_EXPECTED = 'a MAC address like 52:54:00:12:34:56';

// One separator style throughout: 52:54-00:… is a typo, not a MAC, and the
// operator should hear about it rather than have it guessed.
const MAC_FORMS = /^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$|^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$|^[0-9a-f]{12}$/;

/**
 * Accepts aa:bb:cc:dd:ee:ff, AA-BB-…, aabb.ccdd.eeff (Cisco) and aabbccddeeff,
 * surrounding blanks ignored; returns the colon form, or null for anything else
 * (mixed separators included).
 */
export function normaliseMac(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const t = v.trim().toLowerCase();
  if (!MAC_FORMS.test(t)) return null;
  return t.replace(/[:.-]/g, '').match(/../g)!.join(':');
}

/** Hardware address octets (DHCP chaddr, sysfs) in the colon form. */
export function formatMac(octets: Uint8Array): string {
  return [...octets].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/**
 * PXELINUX and iPXE name the boot NIC BOOTIF=01-aa-bb-cc-dd-ee-ff: the leading
 * 01 is the ARP hardware type for Ethernet (RFC 1700), not part of the MAC.
 * Accepts the value with or without that prefix.
 */
export function bootifMac(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const t = v.trim().toLowerCase();
  return normaliseMac(/^01-([0-9a-f]{2}-){5}[0-9a-f]{2}$/.test(t) ? t.slice(3) : t);
}
