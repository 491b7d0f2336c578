import {CodecError, need} from '../../lib/errors.js'
import {macBytes, macString} from './ethernet.js'
import {formatIPv4, ipv4Bytes} from '../../lib/net/ip.js'

/** ARP for IPv4 over Ethernet (RFC 826). */
export interface Arp {
  op: 'request' | 'reply'
  senderMac: string
  senderIp: string
  targetMac: string
  targetIp: string
}

export function decodeArp(b: Buffer): Arp {
  need(b, 0, 28, 'ARP')
  if (b.readUInt16BE(0) !== 1 || b.readUInt16BE(2) !== 0x0800 || b[4] !== 6 || b[5] !== 4) throw new CodecError('ARP_TYPE', 'not ARP for IPv4 over Ethernet')
  const op = b.readUInt16BE(6)
  if (op !== 1 && op !== 2) throw new CodecError('ARP_OP', `unknown ARP operation ${op}`)
  return {op: op === 1 ? 'request' : 'reply', senderMac: macString(b, 8), senderIp: formatIPv4(b, 14), targetMac: macString(b, 18), targetIp: formatIPv4(b, 24)}
}

export function encodeArp(a: Arp): Buffer {
  const b = Buffer.alloc(28)
  b.writeUInt16BE(1, 0)
  b.writeUInt16BE(0x0800, 2)
  b[4] = 6
  b[5] = 4
  b.writeUInt16BE(a.op === 'request' ? 1 : 2, 6)
  macBytes(a.senderMac).copy(b, 8)
  ipv4Bytes(a.senderIp).copy(b, 14)
  macBytes(a.targetMac).copy(b, 18)
  ipv4Bytes(a.targetIp).copy(b, 24)
  return b
}
