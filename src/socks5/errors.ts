import type {ErrorCode} from '../lib/errors.js'
import {Reply} from './codec/messages.js'

/** SOCKS5 reply codes (RFC 1928 §6) on the error model, one table each way. */
export const REPLY_CODES: Readonly<Record<number, ErrorCode>> = {
  [Reply.GENERAL_FAILURE]: 'TK_FAILED',
  [Reply.NOT_ALLOWED]: 'TK_DENIED',
  [Reply.NETWORK_UNREACHABLE]: 'TK_HOST_UNREACHABLE',
  [Reply.HOST_UNREACHABLE]: 'TK_HOST_UNREACHABLE',
  [Reply.CONNECTION_REFUSED]: 'TK_CONNECT_REFUSED',
  [Reply.TTL_EXPIRED]: 'TK_CONNECT_TIMEOUT',
  [Reply.COMMAND_NOT_SUPPORTED]: 'TK_UNSUPPORTED',
  [Reply.ADDRESS_TYPE_NOT_SUPPORTED]: 'TK_UNSUPPORTED',
}

const REPLY_FOR: Partial<Record<ErrorCode, number>> = {
  TK_DENIED: Reply.NOT_ALLOWED,
  TK_NOT_AUTHORIZED: Reply.NOT_ALLOWED,
  TK_HOST_UNREACHABLE: Reply.HOST_UNREACHABLE,
  // A name that does not resolve is a host the proxy cannot reach (curl: "Host unreachable").
  TK_HOST_NOT_FOUND: Reply.HOST_UNREACHABLE,
  TK_CONNECT_REFUSED: Reply.CONNECTION_REFUSED,
  TK_CONNECTION_RESET: Reply.CONNECTION_REFUSED,
  TK_CONNECT_TIMEOUT: Reply.TTL_EXPIRED,
  TK_UNSUPPORTED: Reply.COMMAND_NOT_SUPPORTED,
}

/** The SOCKS5 reply for a failure code; anything without a closer match is a general failure. */
export function socksReply(code: ErrorCode): number {
  return REPLY_FOR[code] ?? Reply.GENERAL_FAILURE
}

export function replyCode(rep: number): ErrorCode | null {
  return rep === Reply.SUCCEEDED ? null : REPLY_CODES[rep] ?? 'TK_FAILED'
}
