import {registerTrace, type Rendered} from '../lib/trace/registry.js'
import {EXCHANGE_NAMES, Flag, PayloadType as P} from './codec/constants.js'
import {decodeMessage, type IkeMessage} from './codec/message.js'
import type {Payload} from './codec/payload.js'
import {payloadText} from './core/describe.js'
import type {SkObserver} from './core/exchange.js'

/** An IKE datagram either way, with what the machine saw inside its SK (if it opened it). */
export interface IkeTraceRecord {
  /** The whole message (without the non-ESP marker); `len` is its length. */
  data: Buffer
  /** From the machine's `onPlain` (core/exchange.ts); absent when it never opened the SK (dropped first, or no SK). */
  inner?: Parameters<SkObserver>[2]
}

/**
 * --trace of an IKE message: exchange and direction, message ID, SPIs, then the payload chain
 * (core/describe.ts: lengths, never key material). An SK the machine opened shows its inner
 * payloads as `SK{decrypted: …}` (`SK{decrypted: empty}`: a DPD); one that failed its integrity
 * check `SK{unverified}`, with nothing of its contents. Never throws: what does not decode is
 * `IKE malformed`.
 */
export function ikeFields(r: IkeTraceRecord): Rendered {
  let m: IkeMessage
  try {
    m = decodeMessage(r.data)
  } catch {
    return {type: 'IKE malformed'}
  }
  return {
    type: `${EXCHANGE_NAMES[m.exchange] ?? m.exchange} ${m.flags & Flag.RESPONSE ? 'response' : 'request'}`,
    mid: m.messageId,
    spis: `${m.spiI.toString('hex')}/${m.spiR.toString('hex')}`,
    payloads: m.payloads.map((p) => (p.type === P.SK ? skText(p, r.inner) : payloadText(p))).join(' '),
  }
}

function skText(sk: Payload, inner: IkeTraceRecord['inner']): string {
  if (inner === undefined) return payloadText(sk)
  if (typeof inner === 'string') return `SK{${inner}}`
  return `SK{decrypted: ${inner.length ? inner.map(payloadText).join(' ') : 'empty'}}`
}

/** IKEv2 messages (RFC 7296) as the driver sends and receives them. */
export const IKE_TRACE = registerTrace('ike', ikeFields)
