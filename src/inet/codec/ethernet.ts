import {CodecError, need} from '../../lib/errors.js'

/** Ethernet II frames (TAP devices), and the ARP and IPv4 ethertypes. */
export const ETH_HEADER = 14
export const EtherType = {IPV4: 0x0800, ARP: 0x0806} as const
export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff'

export function macBytes(mac: string): Buffer {
  const b = Buffer.from(mac.split(':').map((x) => parseInt(x, 16)))
  if (b.length !== 6 || mac.split(':').some((x) => !/^[0-9a-f]{2}$/i.test(x))) throw new CodecError('BAD_MAC', `bad MAC address ${mac}`)
  return b
}

export function macString(b: Buffer, off = 0): string {
  return [...b.subarray(off, off + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':')
}

export interface EthFrame {
  dst: string
  src: string
  type: number
  payload: Buffer
}

/** A frame with an IPv4 payload, read without decoding (the TAP per-packet path). */
export function carriesIpv4(b: Buffer): boolean {
  return b.length > ETH_HEADER && b.readUInt16BE(12) === EtherType.IPV4
}

export function decodeEth(b: Buffer): EthFrame {
  need(b, 0, ETH_HEADER, 'Ethernet header')
  return {dst: macString(b, 0), src: macString(b, 6), type: b.readUInt16BE(12), payload: b.subarray(ETH_HEADER)}
}

export function encodeEth(f: EthFrame): Buffer {
  const h = Buffer.alloc(ETH_HEADER)
  macBytes(f.dst).copy(h, 0)
  macBytes(f.src).copy(h, 6)
  h.writeUInt16BE(f.type, 12)
  return Buffer.concat([h, f.payload])
}
