/**
 * Flow-control sizes. A session may have WINDOW unacknowledged bytes in flight (the OpenSSH and
 * ssh2 channel size: smaller windows throttle high-RTT links). All sessions of one tunnel share
 * TUNNEL_CAP, but every session may always have MIN_WINDOW in flight so that sessions stalled on
 * a slow consumer can never starve the others.
 */
export const WINDOW = 2 * 1024 * 1024
export const TUNNEL_CAP = 32 * 1024 * 1024
export const MIN_WINDOW = 256 * 1024
/** UsherAck SIZE is 16 bits wide (seed 001). */
export const MAX_ACK = 0xffff
/** Acks are sent in batches of this size; it must not exceed MIN_WINDOW. */
export const ACK_BATCH = 128 * 1024
/** Largest UsherSend payload we emit. */
export const MAX_SEND = 64 * 1024
/** Largest frame body we accept. */
export const MAX_FRAME_BODY = 256 * 1024
/** Highest session id: UsherOpenReply's RC is a signed 16-bit field where -1 means failure. */
export const MAX_SESSION_ID = 0x7fff
