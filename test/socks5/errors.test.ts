import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {ERROR_CODES} from '../../src/lib/errors.js'
import {Reply} from '../../src/socks5/codec/messages.js'
import {replyFor} from '../../src/socks5/core/negotiation.js'
import {replyCode, REPLY_CODES, socksReply} from '../../src/socks5/errors.js'

test('every SOCKS5 failure reply has a code; the code leads back to a reply of the same meaning', () => {
  for (const [rep, code] of Object.entries(REPLY_CODES)) {
    assert.ok(code in ERROR_CODES, rep)
    assert.is(REPLY_CODES[socksReply(code)], code, `reply ${rep}`)
  }
  assert.is(replyCode(Reply.SUCCEEDED), null)
  assert.is(replyCode(0x42), 'TK_FAILED')
})

test('a failed open becomes the SOCKS5 reply curl understands', () => {
  assert.is(replyFor('refused: connect to x:1: ECONNREFUSED'), Reply.CONNECTION_REFUSED)
  assert.is(replyFor('denied: alice may not open tcp x:1'), Reply.NOT_ALLOWED)
  assert.is(replyFor('notfound: cannot resolve nowhere: ENOTFOUND'), Reply.HOST_UNREACHABLE)
  assert.is(replyFor('unreachable: connect to x:1: EHOSTUNREACH'), Reply.HOST_UNREACHABLE)
  assert.is(replyFor('timeout: connect to x:1 timed out'), Reply.TTL_EXPIRED)
  assert.is(replyFor('unavailable: the tunnel to the gate is down'), Reply.GENERAL_FAILURE)
  assert.is(replyFor(undefined), Reply.GENERAL_FAILURE)
})

test.run()
