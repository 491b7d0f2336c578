import {createSocket} from 'node:dgram'
import type {Endpoint} from '../core/exchange.js'
import {NATT_PORT} from './driver.js'
import type {EspPlane} from './plane.js'

/**
 * TEMPORARY until src/esp/io/engine.ts lands: UDP 4500 for IKE only (non-ESP marker), no ESP.
 */
export async function openPlane(address: string): Promise<EspPlane> {
  const sock = createSocket('udp4')
  let onIke: (data: Buffer, from: Endpoint) => void = () => {}
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject)
    sock.bind(NATT_PORT, address, () => resolve())
  })
  sock.on('message', (d, r) => {
    if (d.length >= 4 && d.readUInt32BE(0) === 0) onIke(d.subarray(4), {address: r.address, port: r.port})
  })
  let next = 1
  return {
    port: NATT_PORT,
    onIke: (cb) => void (onIke = cb),
    sendIke: (data, to) => sock.send(Buffer.concat([Buffer.alloc(4), data]), to.port, to.address),
    sendKeepalive: (to) => sock.send(Buffer.from([0xff]), to.port, to.address),
    attachTun: () => {},
    addSa: () => next++,
    removeSa: () => {},
    setPeer: () => {},
    stats: () => ({packets: 0, bytes: 0, seq: 0, lastRxMs: 0, drops: {replay: 0, auth: 0, malformed: 0, policy: 0}}),
    onEvent: () => {},
    close: () => sock.close(),
  }
}
