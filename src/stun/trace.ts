import type {StunMessage} from './codec/message.js'
import type {TraceFields} from '../tunnel/trace.js'

const addr = (a?: {address: string; port: number}): string | undefined => (a ? `${a.address}:${a.port}` : undefined)

export function stunFields(m: StunMessage, len: number): TraceFields {
  const f: TraceFields = {type: `Binding ${m.klass}`, txid: m.transactionId.toString('hex'), len}
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
