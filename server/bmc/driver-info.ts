import { invalidInfo, type DriverInfo } from './types.js';

/**
 * The store keeps driver_info as strings (as operators and instackenv write
 * it); drivers want typed values. Converted at this one edge, with the same
 * field-naming errors as validation.
 */
export function toDriverInfo(raw: Record<string, string>): DriverInfo {
  const info: DriverInfo = { address: raw.address ?? '' };
  if (raw.port !== undefined && raw.port !== '') {
    if (!/^\d+$/.test(raw.port)) throw invalidInfo('port', raw.port, 'a port from 1 to 65535');
    info.port = Number(raw.port);
  }
  if (raw.username !== undefined) info.username = raw.username;
  if (raw.password !== undefined) info.password = raw.password;
  if (raw.cipher_suite !== undefined && raw.cipher_suite !== '') {
    if (!/^\d+$/.test(raw.cipher_suite)) throw invalidInfo('cipher_suite', raw.cipher_suite, 'an IPMI cipher suite number');
    info.cipher_suite = Number(raw.cipher_suite);
  }
  if (raw.protocol_version !== undefined) info.protocol_version = raw.protocol_version;
  if (raw.system_id !== undefined) info.system_id = raw.system_id;
  if (raw.verify_ca !== undefined) {
    const v = raw.verify_ca;
    info.verify_ca = v === 'true' ? true : v === 'false' ? false : v;
  }
  return info;
}
