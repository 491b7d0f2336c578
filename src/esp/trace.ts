import {formatIPv4} from '../lib/net/ip.js'
import {registerTrace, type Rendered} from '../lib/trace/registry.js'
import type {EspTraceRecord} from './io/engine.js'

const PROTOS: Readonly<Record<number, string>> = {1: 'icmp', 6: 'tcp', 17: 'udp'}

/**
 * --trace of an ESP packet (the engine's record, either way): SPI and sequence number, then the
 * inner IPv4 header from its first 20 bytes. The Tracer adds direction, peer and `len` (the ESP
 * packet, `record.length`). Never throws: a short inner header shows as `inner=truncated`.
 */
export function espFields(r: EspTraceRecord): Rendered {
  const f: Rendered = {type: 'ESP', spi: `0x${r.spi.toString(16).padStart(8, '0')}`, seq: r.seq}
  const ip = r.inner
  if (ip.length < 20 || ip[0] >> 4 !== 4) return {...f, inner: ip.length && ip[0] >> 4 === 6 ? 'ipv6' : 'truncated'}
  return {...f, src: formatIPv4(ip, 12), dst: formatIPv4(ip, 16), ttl: ip[8], ipProto: PROTOS[ip[9]] ?? ip[9], ipLen: ip.readUInt16BE(2)}
}

/** ESP packets (RFC 4303) as the engine reports them to --trace. */
export const ESP_TRACE = registerTrace('esp', espFields)
