import {CodecError} from '../../lib/errors.js'
import {EtherType} from '../../inet/codec/ethernet.js'
import {isIpv4Packet} from '../../inet/codec/ipv4.js'
import {ipFields} from '../../inet/trace.js'
import {finish, offloadProblem, OFFLOAD_MSS, OFFLOAD_TSO} from '../../inet/codec/offload.js'
import {HEADER_LEN} from '../../tunnel/codec/frame.js'
import {CloseStatus} from '../../tunnel/codec/tunnel.js'
import {DATA_EXPORTER_LABEL, DataReceiver, DataSender, FRAME_ROOM, IntegrityError, splitKeys, type DataMacAlgorithm} from '../../tunnel/core/data-channel.js'
import {HAS_ROOM} from '../../lib/io/tun.js'
import {READ_HEADROOM} from '../../lib/io/native.js'
import {dataMac} from '../../tunnel/io/data-mac.js'
import type {Link} from '../../tunnel/io/link.js'

/** One tunnel's DATA channel: sends a datagram (with its flags from the device: offload, HAS_ROOM),
 * and has the link hand received ones to onDatagram. `dropped`: datagrams not sent because the
 * queue was full. */
export type Channel = {link: Link; send(datagram: Buffer, flags?: number): void; readonly dropped: number; readonly congested: boolean}

/**
 * What may wait in the tunnel's send queue before datagrams are dropped, as a NIC drops when its
 * queue is full. TCP inside the tunnel takes a drop as its signal to slow down; without one it
 * would fill the queue up to the link's "peer is not reading" limit (tens of MiB: as many ms of
 * delay for every packet, and that much memory per tunnel).
 */
export const SEND_QUEUE_LIMIT = 8 * 1024 * 1024
/**
 * Over this much, a sender that can wait should (`congested`): the portal stops reading its device
 * until the queue has drained, which holds back local TCP senders without a loss (a gate's device
 * serves every tunnel, so there one slow tunnel only loses its own packets).
 */
export const SEND_QUEUE_HIGH = 1024 * 1024
if (READ_HEADROOM < FRAME_ROOM) throw new Error('the TUN reader leaves less room than a DATA frame needs')

/** The TLS session the DATA keys come from (a TLSSocket). */
export type KeyExporter = {exportKeyingMaterial(n: number, l: string, c: Buffer): Buffer}

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`
const offloadFields = (flags: number): Record<string, number | string> =>
  flags === 0 ? {} : flags & OFFLOAD_TSO ? {offload: 'tso', mss: flags & OFFLOAD_MSS} : {offload: 'csum'}

/**
 * Keys for this tunnel's DATA frames, from the TLS exporter (docs/protocol.md). Only IPv4 datagrams
 * reach onDatagram; a frame failing its check, or with offload flags that do not fit its datagram,
 * closes the tunnel. What REQUEST and RESPONSE settled: peerOffload, the peer takes super-packets
 * and partial checksums (to a peer that does not, they are finished here before they are sent);
 * dataMac, the DATA digest (default HMAC-SHA-256-128).
 */
export function openChannel(link: Link, tls: KeyExporter, role: 'portal' | 'gate', onDatagram: (d: Buffer, flags: number) => void, o: {peerOffload?: boolean; dataMac?: DataMacAlgorithm} = {}): Channel {
  const peerOffload = o.peerOffload === true
  const keys = splitKeys(tls.exportKeyingMaterial(64, DATA_EXPORTER_LABEL, Buffer.alloc(0)), role)
  const rx = new DataReceiver(dataMac(keys.receive, o.dataMac))
  const tx = new DataSender(dataMac(keys.send, o.dataMac))
  link.onDataFrame = (body) => {
    try {
      const {protocol, flags, datagram} = rx.open(body)
      if (link.tracing) link.trace('in', {type: 'DATA', len: body.length + HEADER_LEN, proto: hex4(protocol), ...offloadFields(flags), ...ipFields(datagram)})
      const problem = offloadProblem(flags, datagram)
      if (problem) return link.close(CloseStatus.PROTOCOL_ERROR, `DATA frame: ${problem}`)
      if (protocol === EtherType.IPV4 && isIpv4Packet(datagram)) onDatagram(datagram, flags)
    } catch (e) {
      if (e instanceof IntegrityError) return link.close(CloseStatus.INTEGRITY_FAILURE, e.message)
      if (e instanceof CodecError) return link.close(CloseStatus.PROTOCOL_ERROR, e.message)
      throw e
    }
  }
  let dropped = 0
  const send = (datagram: Buffer, meta = 0): void => {
    const flags = meta & 0xffff
    if (link.backlog > SEND_QUEUE_LIMIT) {
      dropped++
      if (link.tracing) link.trace('out', {type: 'DATA', dropped: 'send queue full', ...ipFields(datagram)})
      return
    }
    if (flags && !peerOffload) {
      for (const d of finish(flags, datagram)) send(d)
      return
    }
    const frame = meta & HAS_ROOM ? tx.frameInPlace(EtherType.IPV4, datagram, flags) : tx.frame(EtherType.IPV4, datagram, flags)
    if (link.tracing) link.trace('out', {type: 'DATA', len: frame.length, proto: hex4(EtherType.IPV4), ...offloadFields(flags), ...ipFields(datagram)})
    link.sendRaw(frame)
  }
  return {
    link,
    send,
    get dropped() {
      return dropped
    },
    get congested() {
      return link.backlog > SEND_QUEUE_HIGH
    },
  }
}
