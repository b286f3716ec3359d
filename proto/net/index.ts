// Public surface of proto/net: IP address text for the CSV (allocation-free writers) and
// client address truncation by prefix.
export { writeIpText, writeIpv4TextWords } from './ip-text';
export { ClientMask, isV4Mapped, MASK_DEFAULTS, MASK_RANGES } from './mask';
