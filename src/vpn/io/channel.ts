import {CodecError} from '../../lib/errors.js'
import {EtherType} from '../../inet/codec/ethernet.js'
import {isIpv4Packet} from '../../inet/codec/ipv4.js'
import {ipFields} from '../../inet/trace.js'
import {HEADER_LEN} from '../../tunnel/codec/frame.js'
import {CloseStatus} from '../../tunnel/codec/tunnel.js'
import {DATA_EXPORTER_LABEL, DataReceiver, DataSender, IntegrityError, splitKeys} from '../../tunnel/core/data-channel.js'
import {dataMac} from '../../tunnel/io/data-mac.js'
import type {Link} from '../../tunnel/io/link.js'

/** One tunnel's DATA channel: sends a datagram, and has the link hand received ones to onDatagram. */
export type Channel = {link: Link; send(datagram: Buffer): void}

/** The TLS session the DATA keys come from (a TLSSocket). */
export type KeyExporter = {exportKeyingMaterial(n: number, l: string, c: Buffer): Buffer}

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`

/**
 * Keys for this tunnel's DATA frames, from the TLS exporter (docs/protocol.md). Only IPv4 datagrams
 * reach onDatagram; a frame failing its check closes the tunnel.
 */
export function openChannel(link: Link, tls: KeyExporter, role: 'portal' | 'gate', onDatagram: (d: Buffer) => void): Channel {
  const keys = splitKeys(tls.exportKeyingMaterial(64, DATA_EXPORTER_LABEL, Buffer.alloc(0)), role)
  const rx = new DataReceiver(dataMac(keys.receive))
  const tx = new DataSender(dataMac(keys.send))
  link.onDataFrame = (body) => {
    try {
      const {protocol, datagram} = rx.open(body)
      if (link.tracing) link.trace('in', {type: 'DATA', len: body.length + HEADER_LEN, proto: hex4(protocol), ...ipFields(datagram)})
      if (protocol === EtherType.IPV4 && isIpv4Packet(datagram)) onDatagram(datagram)
    } catch (e) {
      if (e instanceof IntegrityError) return link.close(CloseStatus.INTEGRITY_FAILURE, e.message)
      if (e instanceof CodecError) return link.close(CloseStatus.PROTOCOL_ERROR, e.message)
      throw e
    }
  }
  return {
    link,
    send(datagram) {
      const frame = tx.frame(EtherType.IPV4, datagram)
      if (link.tracing) link.trace('out', {type: 'DATA', len: frame.length, proto: hex4(EtherType.IPV4), ...ipFields(datagram)})
      link.sendRaw(frame)
    },
  }
}
