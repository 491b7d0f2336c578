import {CodecError} from '../../lib/errors.js'
import {openFailCode} from '../../tunnel/errors.js'
import {socksReply} from '../errors.js'
import {
  Cmd, encodeAuthStatus, encodeMethodSelect, encodeReply, SocksAuthMethod, parseGreeting, parseSocksRequest, parseUserPass,
  Reply, type SocksRequest,
} from '../codec/messages.js'

export type SocksStep =
  | {kind: 'send'; data: Buffer}
  | {kind: 'request'; request: SocksRequest; rest: Buffer}
  | {kind: 'fail'; data?: Buffer; reason: string}

const MAX_HANDSHAKE = 1024

/** Server side of the SOCKS5 negotiation (RFC 1928, RFC 1929), sans-I/O: bytes in, steps out. */
export class SocksServerMachine {
  private buf: Buffer = Buffer.alloc(0)
  private state: 'greeting' | 'auth' | 'request' | 'done' = 'greeting'

  constructor(private readonly auth?: {user: string; pass: string}) {}

  feed(chunk: Buffer): SocksStep[] {
    if (this.state === 'done') return []
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk
    if (this.buf.length > MAX_HANDSHAKE) return this.fail('SOCKS5 handshake too long')
    const out: SocksStep[] = []
    try {
      for (;;) {
        if (this.state === 'greeting') {
          const g = parseGreeting(this.buf)
          if (!g) break
          this.buf = this.buf.subarray(g.used)
          const want = this.auth ? SocksAuthMethod.USERPASS : SocksAuthMethod.NONE
          if (!g.value.includes(want)) {
            this.state = 'done'
            out.push({kind: 'fail', data: encodeMethodSelect(SocksAuthMethod.NO_ACCEPTABLE), reason: this.auth ? 'client does not offer username/password authentication' : 'client offers no acceptable method'})
            return out
          }
          out.push({kind: 'send', data: encodeMethodSelect(want)})
          this.state = this.auth ? 'auth' : 'request'
        } else if (this.state === 'auth') {
          const a = parseUserPass(this.buf)
          if (!a) break
          this.buf = this.buf.subarray(a.used)
          const ok = a.value.user === this.auth!.user && a.value.pass === this.auth!.pass
          if (!ok) {
            this.state = 'done'
            out.push({kind: 'fail', data: encodeAuthStatus(false), reason: `bad SOCKS5 credentials for "${a.value.user}"`})
            return out
          }
          out.push({kind: 'send', data: encodeAuthStatus(true)})
          this.state = 'request'
        } else if (this.state === 'request') {
          const r = parseSocksRequest(this.buf)
          if (!r) break
          this.state = 'done'
          if (r.value.cmd !== Cmd.CONNECT && r.value.cmd !== Cmd.UDP_ASSOCIATE) {
            out.push({kind: 'fail', data: encodeReply(Reply.COMMAND_NOT_SUPPORTED), reason: `SOCKS5 command ${r.value.cmd} not supported`})
            return out
          }
          out.push({kind: 'request', request: r.value, rest: this.buf.subarray(r.used)})
          return out
        } else break
      }
    } catch (e) {
      if (!(e instanceof CodecError)) throw e
      // A request that parsed far enough to name an address gets a reply (RFC 1928 section 6).
      const data = e.code === 'SOCKS_ATYP' ? encodeReply(Reply.ADDRESS_TYPE_NOT_SUPPORTED)
        : e.code === 'SOCKS_ADDRESS' && this.state === 'request' ? encodeReply(Reply.HOST_UNREACHABLE) : undefined
      this.state = 'done'
      out.push({kind: 'fail', data, reason: e.message})
    }
    return out
  }

  private fail(reason: string): SocksStep[] {
    this.state = 'done'
    return [{kind: 'fail', reason}]
  }
}

/** Maps an UsherOpenReply failure reason ("<word>: detail") to a SOCKS5 reply code. */
export function replyFor(reason: string | undefined): number {
  return socksReply(openFailCode(reason))
}
