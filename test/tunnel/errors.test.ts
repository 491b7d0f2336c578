import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {CodecError, ConnectError, ERROR_CODES, isRetryable, RefusedError, TunkitError} from '../../src/lib/errors.js'
import {CloseStatus, CLOSE_STATUS_NAMES} from '../../src/tunnel/codec/tunnel.js'
import {HandshakeError} from '../../src/tunnel/core/handshake.js'
import {IntegrityError} from '../../src/tunnel/core/data-channel.js'
import {closeError, closeStatusCode, closeStatusFor, CLOSE_STATUS_CODES, OPEN_FAIL_WORDS, openFailCode, openFailReason, openFailWord} from '../../src/tunnel/errors.js'

test('every CLOSE status has a code, and the code leads back to the status', () => {
  for (const status of Object.values(CloseStatus)) {
    const code = CLOSE_STATUS_CODES[status]
    assert.ok(code in ERROR_CODES, `${status}`)
    assert.is(closeStatusFor(new TunkitError(code, 'x')), status, code)
  }
  assert.is(closeStatusCode(999), 'TK_PROTOCOL_ERROR')
})

test('CLOSE answers: a path or authorisation problem is fatal, a hop that is down is retried', () => {
  const fatal = [CloseStatus.HOP_NOT_ALLOWED, CloseStatus.BAD_RELAY_FRAME, CloseStatus.HOP_LIMIT, CloseStatus.NOT_AUTHORIZED, CloseStatus.VERSION_MISMATCH]
  const retried = [CloseStatus.HOP_UNRESOLVABLE, CloseStatus.HOP_UNREACHABLE, CloseStatus.NO_HEALTHY_GATE, CloseStatus.TIMEOUT, CloseStatus.RESOURCE_LIMIT, CloseStatus.SHUTDOWN, CloseStatus.PROTOCOL_ERROR, CloseStatus.KEY_EXPIRED]
  for (const s of fatal) assert.not.ok(isRetryable(closeError(s, 'r')), CLOSE_STATUS_NAMES[s])
  for (const s of retried) assert.ok(isRetryable(closeError(s, 'r')), CLOSE_STATUS_NAMES[s])
  const e = closeError(CloseStatus.HOP_NOT_ALLOWED, 'next hop x is not allowed', 'path a -> b refused')
  assert.is(e.message, 'path a -> b refused: hop-not-allowed (next hop x is not allowed)')
  assert.is(e.code, 'TK_HOP_NOT_ALLOWED')
})

test('errors the tunnel closes for pick their status from the table', () => {
  assert.is(closeStatusFor(new CodecError('VERSION', 'v2')), CloseStatus.VERSION_MISMATCH)
  assert.is(closeStatusFor(new CodecError('TRUNCATED', 'short')), CloseStatus.PROTOCOL_ERROR)
  assert.is(closeStatusFor(new HandshakeError('bad binding')), CloseStatus.NOT_AUTHORIZED)
  assert.is(closeStatusFor(new IntegrityError('bad digest')), CloseStatus.INTEGRITY_FAILURE)
  assert.is(closeStatusFor(new RefusedError('TK_HOP_UNREACHABLE', 'x')), CloseStatus.HOP_UNREACHABLE)
  assert.is(closeStatusFor(new Error('bug')), CloseStatus.PROTOCOL_ERROR)
})

test('UsherOpenReply reasons: "<word>: detail" both ways', () => {
  for (const [word, code] of Object.entries(OPEN_FAIL_WORDS)) {
    assert.is(openFailCode(`${word}: something`), code)
    assert.is(openFailWord(new TunkitError(code, 'x')), word)
  }
  assert.is(openFailReason(new ConnectError('TK_CONNECT_REFUSED', 'connect to 10.0.0.1:80: ECONNREFUSED')), 'refused: connect to 10.0.0.1:80: ECONNREFUSED')
  assert.is(openFailReason(new RefusedError('TK_DENIED', 'alice may not open tcp x:1')), 'denied: alice may not open tcp x:1')
  assert.is(openFailReason(new Error('odd')), 'failed: odd')
  assert.is(openFailCode('limit: too many sessions on this tunnel'), 'TK_RESOURCE_LIMIT')
  assert.is(openFailCode('gibberish'), 'TK_FAILED')
  assert.is(openFailCode('constructor: x'), 'TK_FAILED')
  assert.is(openFailCode(undefined), 'TK_FAILED')
})

test.run()
