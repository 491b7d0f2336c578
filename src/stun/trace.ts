import type {StunMessage} from './codec/message.js'
import {registerTrace, type Rendered} from '../lib/trace/registry.js'
import {hostPort} from '../lib/io/connect.js'

const addr = (a?: {address: string; port: number}): string | undefined => (a ? hostPort(a.address, a.port) : undefined)

export function stunFields(m: StunMessage): Rendered {
  const f: Rendered = {type: `Binding ${m.klass}`, txid: m.transactionId.toString('hex')}
  const add = (k: string, v: string | number | boolean | undefined): void => {
    if (v !== undefined) f[k] = v
  }
  if (!m.cookie) f.classic = true
  add('xorMapped', addr(m.xorMapped))
  add('mapped', addr(m.mapped))
  add('responseOrigin', addr(m.responseOrigin))
  add('otherAddress', addr(m.otherAddress))
  add('sourceAddress', addr(m.sourceAddress))
  add('changedAddress', addr(m.changedAddress))
  if (m.changeRequest) f.changeRequest = `${m.changeRequest.ip ? 'ip' : ''}${m.changeRequest.ip && m.changeRequest.port ? '+' : ''}${m.changeRequest.port ? 'port' : ''}` || 'none'
  add('responsePort', m.responsePort)
  add('padding', m.padding)
  add('error', m.error ? `${m.error.code} ${m.error.reason}` : undefined)
  add('software', m.software)
  return f
}

/** STUN messages (RFC 8489 / 5780, and classic RFC 3489). */
export const STUN_TRACE = registerTrace('stun', stunFields)
