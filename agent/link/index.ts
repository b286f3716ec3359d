// The agent's side of the link (LINK.md): connections, roles, switching, dialing.
export { LinkClient, type LinkClientOptions, type LinkStats, type Role, type TrafficStats } from './client';
export { LinkConnection } from './connection';
export { type DialStats, HEALTHY_AFTER_MS } from './dialer';
