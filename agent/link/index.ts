// The agent's side of the link (LINK.md): connections, roles, switching, dialing.

export { type Clock, realClock, type TimerHandle } from '../../common/clock';
export {
  AUTO_PERIOD_MS,
  LinkClient,
  type LinkClientOptions,
  type LinkStats,
  type Role,
  type TrafficStats,
} from './client';
export { type ConnectionFactory, type LinkConn, LinkConnection } from './connection';
export { type DialStats, HEALTHY_AFTER_MS } from './dialer';
export {
  COLLISION_ROUND_DELAY_MS,
  COLLISION_ROUNDS,
  MAX_COLLISION_REDIALS,
  SEEK_REDIAL_DELAY_MS,
  SEEK_WITHIN_MS,
  type StripeStats,
} from './stripe';
