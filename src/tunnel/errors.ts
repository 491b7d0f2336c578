import {errorCode, RefusedError, TunkitError, type ErrorCode} from '../lib/errors.js'
import {CloseStatus, CLOSE_STATUS_NAMES} from './codec/tunnel.js'

/**
 * The tunnel protocol's result codes on the error model, one table each way:
 * CLOSE statuses (seed 000 Fig. 10) and the first word of a failed UsherOpenReply's reason
 * (seed 001: rc = -1 carries a reason; tunkit starts it with one of these words).
 */
export const CLOSE_STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  [CloseStatus.NORMAL]: 'TK_CLOSED',
  [CloseStatus.PROTOCOL_ERROR]: 'TK_PROTOCOL_ERROR',
  [CloseStatus.NOT_AUTHORIZED]: 'TK_NOT_AUTHORIZED',
  [CloseStatus.INTEGRITY_FAILURE]: 'TK_INTEGRITY_FAILURE',
  [CloseStatus.KEY_EXPIRED]: 'TK_KEY_EXPIRED',
  [CloseStatus.SHUTDOWN]: 'TK_SHUTDOWN',
  [CloseStatus.TIMEOUT]: 'TK_TIMEOUT',
  [CloseStatus.RESOURCE_LIMIT]: 'TK_RESOURCE_LIMIT',
  [CloseStatus.VERSION_MISMATCH]: 'TK_VERSION_MISMATCH',
  [CloseStatus.HOP_NOT_ALLOWED]: 'TK_HOP_NOT_ALLOWED',
  [CloseStatus.HOP_UNRESOLVABLE]: 'TK_HOP_UNRESOLVABLE',
  [CloseStatus.HOP_UNREACHABLE]: 'TK_HOP_UNREACHABLE',
  [CloseStatus.NO_HEALTHY_GATE]: 'TK_NO_HEALTHY_GATE',
  [CloseStatus.BAD_RELAY_FRAME]: 'TK_BAD_RELAY_FRAME',
  [CloseStatus.HOP_LIMIT]: 'TK_HOP_LIMIT',
  [CloseStatus.HOP_LOOP]: 'TK_HOP_LOOP',
}

/** The status a CLOSE frame carries for an error: the reverse of CLOSE_STATUS_CODES. */
const STATUS_FOR: Partial<Record<ErrorCode, number>> = Object.fromEntries(Object.entries(CLOSE_STATUS_CODES).map(([s, c]) => [c, Number(s)]))
Object.assign(STATUS_FOR, {
  TK_MALFORMED: CloseStatus.PROTOCOL_ERROR,
  TK_UNSUPPORTED: CloseStatus.PROTOCOL_ERROR,
  TK_DENIED: CloseStatus.NOT_AUTHORIZED,
  TK_TLS_UNKNOWN_CA: CloseStatus.NOT_AUTHORIZED,
  TK_TLS_BAD_CERTIFICATE: CloseStatus.NOT_AUTHORIZED,
  TK_TLS_CERT_EXPIRED: CloseStatus.NOT_AUTHORIZED,
  TK_TLS_CERT_NOT_YET_VALID: CloseStatus.NOT_AUTHORIZED,
  TK_TLS_CERT_REQUIRED: CloseStatus.NOT_AUTHORIZED,
  TK_TLS_HOSTNAME_MISMATCH: CloseStatus.NOT_AUTHORIZED,
  TK_CONNECT_TIMEOUT: CloseStatus.TIMEOUT,
  TK_HOST_NOT_FOUND: CloseStatus.HOP_UNRESOLVABLE,
  TK_CONNECT_REFUSED: CloseStatus.HOP_UNREACHABLE,
  TK_HOST_UNREACHABLE: CloseStatus.HOP_UNREACHABLE,
} satisfies Partial<Record<ErrorCode, number>>)

export function closeStatusCode(status: number): ErrorCode {
  return CLOSE_STATUS_CODES[status] ?? 'TK_PROTOCOL_ERROR'
}

export function closeStatusFor(err: unknown): number {
  return STATUS_FOR[errorCode(err)] ?? CloseStatus.PROTOCOL_ERROR
}

/** A CLOSE frame received, as an error: its status decides the code, its reason the message. */
export function closeError(status: number, reason: string, context?: string): RefusedError {
  const name = CLOSE_STATUS_NAMES[status] ?? `status ${status}`
  return new RefusedError(closeStatusCode(status), `${context ? context + ': ' : ''}${name}${reason ? ` (${reason})` : ''}`)
}

/** First word of a failed UsherOpenReply's reason ("refused: connect to …") ⇄ error code. */
export const OPEN_FAIL_WORDS = {
  refused: 'TK_CONNECT_REFUSED',
  timeout: 'TK_CONNECT_TIMEOUT',
  unreachable: 'TK_HOST_UNREACHABLE',
  notfound: 'TK_HOST_NOT_FOUND',
  denied: 'TK_DENIED',
  limit: 'TK_RESOURCE_LIMIT',
  unavailable: 'TK_UNAVAILABLE',
  failed: 'TK_FAILED',
} as const satisfies Record<string, ErrorCode>

export type OpenFailWord = keyof typeof OPEN_FAIL_WORDS

const WORD_FOR: Partial<Record<ErrorCode, OpenFailWord>> = {
  ...Object.fromEntries(Object.entries(OPEN_FAIL_WORDS).map(([w, c]) => [c, w as OpenFailWord])),
  TK_CONNECTION_RESET: 'refused',
  TK_NOT_AUTHORIZED: 'denied',
  TK_RESOURCE_LIMIT: 'limit',
}

export function openFailWord(err: unknown): OpenFailWord {
  return WORD_FOR[errorCode(err)] ?? 'failed'
}

/** The reason an UsherOpenReply with rc = -1 carries for an error: "<word>: <message>". */
export function openFailReason(err: unknown): string {
  return `${openFailWord(err)}: ${err instanceof Error ? err.message : String(err)}`
}

/** The code of a failed open from the reason the peer sent (unknown words are TK_FAILED). */
export function openFailCode(reason: string | undefined): ErrorCode {
  const word = (reason ?? '').split(':')[0] as OpenFailWord
  return Object.hasOwn(OPEN_FAIL_WORDS, word) ? OPEN_FAIL_WORDS[word] : 'TK_FAILED'
}

export function openFailError(reason: string | undefined): TunkitError {
  return new TunkitError(openFailCode(reason), reason || 'failed')
}
