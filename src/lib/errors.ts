/**
 * One error model (after undici's lib/core/errors.js): every failure tunkit reports is a
 * TunkitError with a stable `code`, a sentence a user can read, and the underlying error kept as
 * `cause`. Whether to retry or give up, and which exit status a command ends with, is decided by
 * the code through ERROR_CODES — never by reading the message text.
 */

/** What a code means to a caller: worth another attempt later, and the CLI exit status. */
export interface CodeInfo {
  /** Trying again later may succeed without anyone changing the configuration. */
  readonly retryable: boolean
  /** Exit status of a command that fails with it: 2 for usage errors, 1 for runtime failures. */
  readonly exit: 1 | 2
  readonly summary: string
}

const retry = (summary: string): CodeInfo => ({retryable: true, exit: 1, summary})
const fatal = (summary: string): CodeInfo => ({retryable: false, exit: 1, summary})

/** Every code tunkit reports (docs/events.md lists them for `error` events). */
export const ERROR_CODES = {
  // Reaching a peer: transient by nature.
  TK_CONNECT_REFUSED: retry('the peer refused the connection'),
  TK_CONNECT_TIMEOUT: retry('the connection attempt timed out'),
  TK_HOST_UNREACHABLE: retry('no route to the host or network'),
  TK_HOST_NOT_FOUND: retry('the host name does not resolve'),
  TK_CONNECTION_RESET: retry('the peer reset the connection'),
  TK_CONNECTION_CLOSED: retry('the peer closed the connection'),
  TK_TIMEOUT: retry('the peer stopped answering'),
  TK_UNAVAILABLE: retry('the tunnel is down'),
  TK_RESOURCE_LIMIT: retry('a limit was reached (tunnels, sessions, buffers)'),
  TK_SHUTDOWN: retry('the peer is shutting down'),
  TK_KEY_EXPIRED: retry('the key lifetime ended'),
  TK_CLOSED: retry('closed normally'),
  TK_PROTOCOL_ERROR: retry('the peer broke the protocol'),
  TK_MALFORMED: retry('a message did not decode'),
  TK_INTEGRITY_FAILURE: retry('a DATA frame failed its integrity check'),
  TK_TLS_HANDSHAKE_FAILED: retry('the TLS handshake failed'),
  TK_HOP_UNRESOLVABLE: retry('a relay could not resolve the next hop'),
  TK_HOP_UNREACHABLE: retry('a relay could not reach the next hop'),
  TK_NO_HEALTHY_GATE: retry('no gate of the group accepted the tunnel'),
  TK_FAILED: retry('the operation failed'),
  // Certificates and authorisation: only a change of configuration helps.
  TK_TLS_UNKNOWN_CA: fatal('the certificate is not signed by a trusted CA'),
  TK_TLS_BAD_CERTIFICATE: fatal('the peer rejected the certificate'),
  TK_TLS_CERT_EXPIRED: fatal('the certificate has expired'),
  TK_TLS_CERT_NOT_YET_VALID: fatal('the certificate is not yet valid'),
  TK_TLS_CERT_REQUIRED: fatal('no client certificate was sent'),
  TK_TLS_HOSTNAME_MISMATCH: fatal('the certificate does not name the host'),
  TK_TLS_CONFIG: fatal('our own certificate, key or CA file cannot be used'),
  TK_NOT_AUTHORIZED: fatal('not authorised'),
  TK_DENIED: fatal('the policy does not allow it'),
  TK_HOP_NOT_ALLOWED: fatal('a relay may not forward to the next hop'),
  TK_HOP_LIMIT: fatal('the path has too many relays'),
  TK_HOP_LOOP: fatal('the path leads back to a relay it already passed'),
  TK_BAD_RELAY_FRAME: fatal('the RELAY frame or its path is wrong'),
  TK_VERSION_MISMATCH: fatal('the peer speaks another protocol version'),
  TK_NOT_A_GATE: fatal('the peer does not speak the tunkit protocol (not a gate or relay)'),
  TK_UNSUPPORTED: fatal('the peer asked for something not supported'),
  TK_INTERNAL: fatal('internal error'),
  TK_USAGE: {retryable: false, exit: 2, summary: 'a flag or argument is wrong'},
} as const satisfies Record<string, CodeInfo>

export type ErrorCode = keyof typeof ERROR_CODES

/** Base of every error tunkit raises on purpose; `instanceof TunkitError` plus `code` is the API. */
export class TunkitError extends Error {
  override name = 'TunkitError'
  constructor(readonly code: ErrorCode, message: string, options?: {cause?: unknown}) {
    super(message, options)
  }

  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable
  }
}

/** Dialling a peer failed (refused, timed out, unreachable, name not found). */
export class ConnectError extends TunkitError {
  override name = 'ConnectError'
}

/** TLS failed: a certificate problem (fatal) or a handshake that broke off (retryable). */
export class TlsError extends TunkitError {
  override name = 'TlsError'
}

/** A peer, relay or policy refused: the code says which (not authorised, hop not allowed…). */
export class RefusedError extends TunkitError {
  override name = 'RefusedError'
}

/**
 * The one table from Node's and OpenSSL's `err.code` to tunkit's codes. Server-side verify
 * results (X509_V_ERR_* names as Node spells them) and the alerts the peer sends
 * (ERR_SSL_*_ALERT_*) land on the same code, so both ends of a handshake agree on what happened.
 */
export const SYSTEM_CODES: Readonly<Record<string, ErrorCode>> = {
  ECONNREFUSED: 'TK_CONNECT_REFUSED',
  ETIMEDOUT: 'TK_CONNECT_TIMEOUT',
  EHOSTUNREACH: 'TK_HOST_UNREACHABLE',
  ENETUNREACH: 'TK_HOST_UNREACHABLE',
  EHOSTDOWN: 'TK_HOST_UNREACHABLE',
  EADDRNOTAVAIL: 'TK_HOST_UNREACHABLE',
  EAFNOSUPPORT: 'TK_HOST_UNREACHABLE',
  ENOTFOUND: 'TK_HOST_NOT_FOUND',
  EAI_AGAIN: 'TK_HOST_NOT_FOUND',
  EAI_NONAME: 'TK_HOST_NOT_FOUND',
  EAI_NODATA: 'TK_HOST_NOT_FOUND',
  ECONNRESET: 'TK_CONNECTION_RESET',
  EPIPE: 'TK_CONNECTION_RESET',
  ECONNABORTED: 'TK_CONNECTION_RESET',
  ERR_SOCKET_CLOSED: 'TK_CONNECTION_CLOSED',
  ERR_STREAM_PREMATURE_CLOSE: 'TK_CONNECTION_CLOSED',
  // Verification of the peer's chain (this end decided).
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TK_TLS_UNKNOWN_CA',
  UNABLE_TO_GET_ISSUER_CERT: 'TK_TLS_UNKNOWN_CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'TK_TLS_UNKNOWN_CA',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TK_TLS_UNKNOWN_CA',
  SELF_SIGNED_CERT_IN_CHAIN: 'TK_TLS_UNKNOWN_CA',
  CERT_SIGNATURE_FAILURE: 'TK_TLS_UNKNOWN_CA',
  CERT_UNTRUSTED: 'TK_TLS_UNKNOWN_CA',
  CERT_HAS_EXPIRED: 'TK_TLS_CERT_EXPIRED',
  CERT_NOT_YET_VALID: 'TK_TLS_CERT_NOT_YET_VALID',
  CERT_REJECTED: 'TK_TLS_BAD_CERTIFICATE',
  CERT_REVOKED: 'TK_TLS_BAD_CERTIFICATE',
  INVALID_CA: 'TK_TLS_UNKNOWN_CA',
  INVALID_PURPOSE: 'TK_TLS_BAD_CERTIFICATE',
  CERT_CHAIN_TOO_LONG: 'TK_TLS_BAD_CERTIFICATE',
  HOSTNAME_MISMATCH: 'TK_TLS_HOSTNAME_MISMATCH',
  // Our own files, as OpenSSL finds them when a TLS context is made (loadTls checks them first).
  ERR_OSSL_X509_KEY_VALUES_MISMATCH: 'TK_TLS_CONFIG',
  ERR_OSSL_PEM_NO_START_LINE: 'TK_TLS_CONFIG',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TK_TLS_HOSTNAME_MISMATCH',
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'TK_TLS_CERT_REQUIRED',
  // Alerts from the peer (the other end decided).
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'TK_TLS_UNKNOWN_CA',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'TK_TLS_BAD_CERTIFICATE',
  ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE: 'TK_TLS_BAD_CERTIFICATE',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED: 'TK_TLS_BAD_CERTIFICATE',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: 'TK_TLS_BAD_CERTIFICATE',
  ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR: 'TK_TLS_BAD_CERTIFICATE',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'TK_TLS_CERT_EXPIRED',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'TK_TLS_CERT_REQUIRED',
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: 'TK_VERSION_MISMATCH',
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'TK_VERSION_MISMATCH',
  ERR_SSL_NO_PROTOCOLS_AVAILABLE: 'TK_VERSION_MISMATCH',
}

/** Any thrown value's tunkit code: its own, via SYSTEM_CODES, or `fallback`. */
export function errorCode(err: unknown, fallback: ErrorCode = 'TK_FAILED'): ErrorCode {
  if (err instanceof TunkitError) return err.code
  if (err instanceof CodecError) return err.code === 'VERSION' ? 'TK_VERSION_MISMATCH' : err.code === 'CLOSED' ? 'TK_CONNECTION_CLOSED' : 'TK_MALFORMED'
  const sys = (err as {code?: unknown} | null)?.code
  return (typeof sys === 'string' && SYSTEM_CODES[sys]) || fallback
}

/** Retry or give up: by code only. Anything unknown is retried (a later attempt costs little). */
export function isRetryable(err: unknown): boolean {
  return ERROR_CODES[errorCode(err)].retryable
}

export function exitStatus(err: unknown): 1 | 2 {
  return ERROR_CODES[errorCode(err)].exit
}

/**
 * Wraps a Node/OpenSSL error as a TunkitError: the code from SYSTEM_CODES, the message prefixed
 * with what was being done, the original kept as `cause`.
 */
export function fromSystemError(err: unknown, doing: string, fallback: ErrorCode = 'TK_FAILED'): TunkitError {
  if (err instanceof TunkitError) return err
  const code = errorCode(err, fallback)
  const e = err as {code?: string; message?: string}
  const detail = e?.code ?? e?.message ?? String(err)
  const Class = code.startsWith('TK_TLS_') ? TlsError : code.startsWith('TK_CONNECT_') || code.startsWith('TK_HOST_') ? ConnectError : TunkitError
  return new Class(code, `${doing}: ${detail}`, {cause: err})
}

/**
 * A decoder's only failure mode: malformed input becomes this, never any other exception. A
 * sibling of TunkitError kept apart on purpose: its `code` names the decoding fault (TRUNCATED,
 * VERSION…) for the codec's own callers; errorCode() maps it to TK_MALFORMED or TK_VERSION_MISMATCH.
 */
export class CodecError extends Error {
  override readonly name = 'CodecError'
  constructor(readonly code: string, message: string) {
    super(message)
  }
}

export function need(buf: Buffer, offset: number, n: number, what: string): void {
  if (offset + n > buf.length) throw new CodecError('TRUNCATED', `${what}: truncated (need ${n} bytes at ${offset}, have ${buf.length - offset})`)
}

/** Reads a NUL-terminated UTF-8 string; returns the string and the offset after the NUL. */
export function readCString(buf: Buffer, offset: number, what: string): [string, number] {
  const end = buf.indexOf(0, offset)
  if (end < 0) throw new CodecError('UNTERMINATED', `${what}: string not NUL-terminated`)
  return [buf.toString('utf8', offset, end), end + 1]
}

export function cString(s: string): Buffer {
  const b = Buffer.from(s + '\0', 'utf8')
  if (b.indexOf(0) !== b.length - 1) throw new CodecError('BAD_STRING', 'string contains a NUL byte')
  return b
}
