import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {CodecError, ConnectError, ERROR_CODES, errorCode, exitStatus, fromSystemError, isRetryable, SYSTEM_CODES, TlsError, TunkitError} from '../../src/lib/errors.js'

const sys = (code: string, message = code): Error => Object.assign(new Error(message), {code})

test('a TunkitError keeps its code, its message and its cause', () => {
  const cause = sys('ECONNREFUSED')
  const e = new ConnectError('TK_CONNECT_REFUSED', 'connect to 127.0.0.1:1: ECONNREFUSED', {cause})
  assert.ok(e instanceof TunkitError)
  assert.is(e.code, 'TK_CONNECT_REFUSED')
  assert.is(e.message, 'connect to 127.0.0.1:1: ECONNREFUSED')
  assert.is(e.cause, cause)
  assert.is(e.name, 'ConnectError')
})

test('every code has a retry decision and an exit status; only usage errors exit 2', () => {
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    assert.type(info.retryable, 'boolean', code)
    assert.is(info.exit, code === 'TK_USAGE' ? 2 : 1, code)
    assert.ok(code.startsWith('TK_'), code)
  }
  assert.is(exitStatus(new TunkitError('TK_USAGE', 'x')), 2)
  assert.is(exitStatus(new TunkitError('TK_NOT_AUTHORIZED', 'x')), 1)
})

test('SYSTEM_CODES maps only to codes of the model', () => {
  for (const [sysCode, code] of Object.entries(SYSTEM_CODES)) assert.ok(code in ERROR_CODES, `${sysCode} -> ${code}`)
})

test('a wrong or unknown CA, a missing or expired certificate: fatal, whichever end saw it', () => {
  for (const c of ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
    'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'CERT_HAS_EXPIRED', 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
    'ERR_TLS_CERT_ALTNAME_INVALID']) {
    assert.not.ok(isRetryable(sys(c)), c)
    assert.ok(errorCode(sys(c)).startsWith('TK_TLS_'), c)
  }
  assert.is(errorCode(sys('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA')), 'TK_TLS_UNKNOWN_CA')
  assert.is(errorCode(sys('UNABLE_TO_VERIFY_LEAF_SIGNATURE')), 'TK_TLS_UNKNOWN_CA')
  assert.is(errorCode(sys('CERT_HAS_EXPIRED')), 'TK_TLS_CERT_EXPIRED')
  assert.is(errorCode(sys('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')), 'TK_TLS_CERT_REQUIRED')
})

test('refused, timed out, unreachable, not found, reset: retried', () => {
  const cases: [string, string][] = [['ECONNREFUSED', 'TK_CONNECT_REFUSED'], ['ETIMEDOUT', 'TK_CONNECT_TIMEOUT'], ['EHOSTUNREACH', 'TK_HOST_UNREACHABLE'],
    ['ENETUNREACH', 'TK_HOST_UNREACHABLE'], ['ENOTFOUND', 'TK_HOST_NOT_FOUND'], ['EAI_AGAIN', 'TK_HOST_NOT_FOUND'], ['ECONNRESET', 'TK_CONNECTION_RESET']]
  for (const [c, code] of cases) {
    assert.is(errorCode(sys(c)), code, c)
    assert.ok(isRetryable(sys(c)), c)
  }
  assert.ok(isRetryable(new ConnectError('TK_CONNECT_TIMEOUT', 'connect timed out')))
})

test('the decision reads the code, never the message', () => {
  // A message full of certificate words does not make a refused connection fatal…
  assert.ok(isRetryable(sys('ECONNREFUSED', 'certificate alert: unknown ca')))
  // …and a bland message does not make an unknown CA retryable.
  assert.not.ok(isRetryable(sys('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'oops')))
  // Unknown system codes, and errors without one, fall back to a retryable TK_FAILED.
  assert.is(errorCode(sys('EWHATEVER')), 'TK_FAILED')
  assert.is(errorCode(new Error('certificate')), 'TK_FAILED')
  assert.ok(isRetryable(new Error('unknown ca')))
})

test('fromSystemError wraps with the mapped code, a readable message and the cause', () => {
  const cause = sys('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate')
  const e = fromSystemError(cause, 'TLS with gate.example:443')
  assert.ok(e instanceof TlsError)
  assert.is(e.code, 'TK_TLS_UNKNOWN_CA')
  assert.is(e.message, 'TLS with gate.example:443: UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  assert.is(e.cause, cause)
  assert.ok(fromSystemError(sys('ECONNREFUSED'), 'connect') instanceof ConnectError)
  assert.is(fromSystemError(new Error('socks said no'), 'via proxy', 'TK_HOST_UNREACHABLE').code, 'TK_HOST_UNREACHABLE')
  const own = new TunkitError('TK_DENIED', 'no')
  assert.is(fromSystemError(own, 'x'), own)
})

test('a CodecError stays the decoder\'s own error, and maps onto the model', () => {
  const e = new CodecError('TRUNCATED', 'short')
  assert.not.ok(e instanceof TunkitError)
  assert.is(errorCode(e), 'TK_MALFORMED')
  assert.is(errorCode(new CodecError('VERSION', 'v9')), 'TK_VERSION_MISMATCH')
  assert.not.ok(isRetryable(new CodecError('VERSION', 'v9')))
  assert.is(errorCode(new CodecError('CLOSED', 'gone')), 'TK_CONNECTION_CLOSED')
})

test.run()
