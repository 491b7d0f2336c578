import {createHash, randomBytes} from 'node:crypto'
import {createServer as httpServer, type Server as HttpServer} from 'node:http'
import {connect, createServer, type AddressInfo, type Server, type Socket} from 'node:net'
import {createSocket, type Socket as UdpSocket} from 'node:dgram'

export function listening<T extends Server | HttpServer>(s: T, host = '127.0.0.1'): Promise<T & {port: number}> {
  return new Promise((res) => s.listen(0, host, () => res(Object.assign(s, {port: (s.address() as AddressInfo).port}))))
}

export const httpBody = (path: string): string => `hello from behind the gate: ${path}\n`

export function helloHttp(): Promise<HttpServer & {port: number}> {
  return listening(httpServer((req, res) => res.end(httpBody(req.url ?? '/'))))
}

/** Hashes everything it receives; on the client's EOF it answers with the hex SHA-256 and closes. */
export function hashSink(): Promise<Server & {port: number}> {
  return listening(createServer((s) => {
    const h = createHash('sha256')
    s.on('data', (d) => h.update(d))
    s.on('end', () => s.end(h.digest('hex')))
    s.on('error', () => {})
  }))
}

/** Accepts and never reads: a stalled consumer. */
export function blackHole(): Promise<Server & {port: number; sockets: Socket[]}> {
  const sockets: Socket[] = []
  return listening(createServer((s) => {
    s.pause()
    s.on('error', () => {})
    sockets.push(s)
  })).then((srv) => Object.assign(srv, {sockets}))
}

/** Streams `bytes` of pseudo-random data to host:port, half-closes, and returns [sent hash, reply, seconds]. */
export function upload(port: number, bytes: number, host = '127.0.0.1'): Promise<{sent: string; reply: string; seconds: number}> {
  return new Promise((res, rej) => {
    const block = randomBytes(1 << 20)
    const h = createHash('sha256')
    const t0 = process.hrtime.bigint()
    const s = connect(port, host)
    let left = bytes
    let reply = ''
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, block.length)
        const chunk = n === block.length ? block : block.subarray(0, n)
        // Vary the content so a duplicated or dropped block changes the hash.
        chunk[0] = (left >>> 20) & 255
        h.update(chunk)
        left -= n
        if (!s.write(Buffer.from(chunk))) return void s.once('drain', pump)
      }
      s.end()
    }
    s.on('connect', pump)
    s.on('data', (d) => (reply += d))
    s.on('end', () => res({sent: h.digest('hex'), reply, seconds: Number(process.hrtime.bigint() - t0) / 1e9}))
    s.on('error', rej)
  })
}

export function udpEcho(): Promise<UdpSocket & {port: number}> {
  const s = createSocket('udp4')
  s.on('message', (m, r) => s.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address))
  return new Promise((res) => s.bind(0, '127.0.0.1', () => res(Object.assign(s, {port: s.address().port}))))
}

export function udpAsk(port: number, msg: Buffer, host = '127.0.0.1', ms = 3000): Promise<Buffer> {
  const s = createSocket('udp4')
  return new Promise((res, rej) => {
    const t = setTimeout(() => { s.close(); rej(new Error('no UDP reply')) }, ms)
    s.on('message', (m) => { clearTimeout(t); s.close(); res(m) })
    s.send(msg, port, host)
  })
}

/** A bare SOCKS5 CONNECT; returns the reply code byte. */
export function socksConnect(proxyPort: number, host: string, port: number): Promise<{rep: number; socket: Socket}> {
  return new Promise((res, rej) => {
    const s = connect(proxyPort, '127.0.0.1')
    let buf = Buffer.alloc(0)
    let stage = 0
    s.on('error', rej)
    s.on('connect', () => s.write(Buffer.from([5, 1, 0])))
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      if (stage === 0 && buf.length >= 2) {
        buf = buf.subarray(2)
        stage = 1
        const name = Buffer.from(host)
        const p = Buffer.alloc(2)
        p.writeUInt16BE(port)
        s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, p]))
      }
      if (stage === 1 && buf.length >= 10) {
        stage = 2
        s.removeAllListeners('data')
        res({rep: buf[1], socket: s})
      }
    })
    s.on('close', () => { if (stage < 2) rej(new Error('SOCKS server closed the connection')) })
  })
}

/**
 * A minimal authoritative DNS responder (RFC 1035): answers A queries for `name` with `address`
 * and NXDOMAIN otherwise. Enough for a real resolver to exercise UDP DNS through a tunnel.
 */
export function tinyDns(name: string, address: string): Promise<UdpSocket & {port: number; queries: number}> {
  const s = Object.assign(createSocket('udp4'), {queries: 0})
  s.on('message', (q, r) => {
    if (q.length < 17) return
    s.queries++
    let off = 12
    const labels: string[] = []
    while (off < q.length && q[off] !== 0) { labels.push(q.toString('latin1', off + 1, off + 1 + q[off])); off += q[off] + 1 }
    const question = q.subarray(12, off + 5)
    const qtype = q.readUInt16BE(off + 1)
    const hit = labels.join('.').toLowerCase() === name && qtype === 1
    const head = Buffer.from(q.subarray(0, 12))
    head.writeUInt16BE(0x8400 | (hit ? 0 : 3), 2) // QR, AA, RCODE
    head.writeUInt16BE(1, 4)
    head.writeUInt16BE(hit ? 1 : 0, 6)
    head.writeUInt32BE(0, 8)
    const answer = hit ? Buffer.concat([Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]), Buffer.from(address.split('.').map(Number))]) : Buffer.alloc(0)
    s.send(Buffer.concat([head, question, answer]), r.port, r.address)
  })
  return new Promise((res) => s.bind(0, '127.0.0.1', () => res(Object.assign(s, {port: s.address().port}))))
}
