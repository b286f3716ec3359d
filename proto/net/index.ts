// Public surface of proto/net: IP address text for the CSV (allocation-free writers).
export { writeIpText } from './ip-text';
