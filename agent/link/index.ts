// The agent's side of the link (LINK.md): connections, roles, switching, dialing.
export { LinkClient, type LinkClientOptions, type Role } from './client';
export { LinkConnection } from './connection';
export { HEALTHY_AFTER_MS, type LinkStats } from './dialer';
