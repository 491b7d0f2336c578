import {ipv4FromU32, ipv4ToU32, isIPv4} from '../../lib/net/ip.js'
import {AUTH_NAMES, CERT_NAMES, CFG_ATTR_NAMES, CFG_NAMES, DhGroup, Encr, Integ, NOTIFY_NAMES, PAYLOAD_NAMES, PayloadType as P, Prf, PROTOCOL_NAMES, TransformType as T, TsType} from '../codec/constants.js'
import {cpAddress, decodeCpPolicy, TUNKIT_POLICY, type CfgAttribute, type PolicyTransform} from '../codec/cp.js'
import {idToString} from '../codec/id.js'
import type {Payload} from '../codec/payload.js'
import {keyLength} from '../codec/sa.js'
import type {TrafficSelector} from '../codec/ts.js'
import type {Suite} from './crypto.js'

/**
 * How SAs read in logs, events and `--export json`: suites in strongSwan's spelling (the one
 * `--policy` takes, so a line can be pasted back), traffic selectors as CIDRs.
 */

const ENCR: Readonly<Record<number, (bits?: number) => string>> = {
  [Encr.AES_GCM_16]: (b) => `aes${b ?? 128}gcm16`,
  [Encr.CHACHA20_POLY1305]: () => 'chacha20poly1305',
  [Encr.AES_CBC]: (b) => `aes${b ?? 128}`,
}
const INTEG: Readonly<Record<number, string>> = {[Integ.HMAC_SHA1_96]: 'sha1', [Integ.HMAC_SHA2_256_128]: 'sha256', [Integ.HMAC_SHA2_384_192]: 'sha384', [Integ.HMAC_SHA2_512_256]: 'sha512'}
const PRF: Readonly<Record<number, string>> = {[Prf.HMAC_SHA1]: 'prfsha1', [Prf.HMAC_SHA2_256]: 'prfsha256', [Prf.HMAC_SHA2_384]: 'prfsha384', [Prf.HMAC_SHA2_512]: 'prfsha512'}
const DH: Readonly<Record<number, string>> = {[DhGroup.CURVE25519]: 'x25519', [DhGroup.ECP_384]: 'ecp384', [DhGroup.ECP_256]: 'ecp256', [DhGroup.MODP_3072]: 'modp3072', [DhGroup.MODP_2048]: 'modp2048'}

/** `aes256gcm16-prfsha256-x25519`, `aes256-sha256` (ESP without PFS). */
export function suiteText(s: Suite): string {
  const words = [ENCR[s.encr]?.(s.encrKeyBits) ?? `encr${s.encr}`]
  if (s.integ) words.push(INTEG[s.integ] ?? `integ${s.integ}`)
  if (s.prf) words.push(PRF[s.prf] ?? `prf${s.prf}`)
  if (s.dh) words.push(DH[s.dh] ?? `dh${s.dh}`)
  return words.join('-')
}

/** The smallest list of CIDRs covering the IPv4 range [start, end]. */
export function rangeToCidrs(start: string, end: string): string[] {
  let a = ipv4ToU32(start)
  const b = ipv4ToU32(end)
  const out: string[] = []
  while (a <= b) {
    // The largest block aligned at `a` that does not pass `b`.
    let size = a === 0 ? 2 ** 32 : (a & -a) >>> 0
    while (a + size - 1 > b) size /= 2
    out.push(`${ipv4FromU32(a)}/${32 - Math.log2(size)}`)
    a += size
  }
  return out
}

/** IPv4 selectors as CIDRs (ports and protocol, when narrowed, follow in brackets). */
export function tsText(ts: readonly TrafficSelector[]): string {
  return ts.map((t) => {
    if (t.tsType !== TsType.IPV4_ADDR_RANGE || !isIPv4(t.start) || !isIPv4(t.end)) return `${t.start}-${t.end}`
    const nets = rangeToCidrs(t.start, t.end).join(',')
    const ports = t.startPort === 0 && t.endPort === 65535 ? '' : `:${t.startPort === t.endPort ? t.startPort : `${t.startPort}-${t.endPort}`}`
    return t.ipProtocol || ports ? `${nets}[${t.ipProtocol || 'any'}${ports}]` : nets
  }).join(' ')
}

/** The IPv4 ranges of selectors (for the data plane, which checks addresses only). */
export function tsRanges(ts: readonly TrafficSelector[]): {from: string; to: string}[] {
  return ts.filter((t) => t.tsType === TsType.IPV4_ADDR_RANGE && isIPv4(t.start) && isIPv4(t.end)).map((t) => ({from: t.start, to: t.end}))
}

/** One transform in strongSwan's spelling; "none" choices (no INTEG, no DH, no ESN) are left out. */
function transformText(type: number, id: number, bits: number | undefined): string {
  switch (type) {
    case T.ENCR: return ENCR[id]?.(bits) ?? `encr${id}`
    case T.PRF: return PRF[id] ?? `prf${id}`
    case T.INTEG: return id ? (INTEG[id] ?? `integ${id}`) : ''
    case T.DH: return id ? (DH[id] ?? `dh${id}`) : ''
    case T.ESN: return id ? 'esn' : ''
    default: return `t${type}.${id}`
  }
}

/** A proposal's transforms as one strongSwan proposal string (`aes256gcm16-aes128gcm16-prfsha512-x25519-ecp256`). */
function transformsText(ts: readonly PolicyTransform[]): string {
  return ts.map((t) => transformText(t.type, t.id, t.keyBits)).filter(Boolean).join('-')
}

/** A CP attribute: addresses as text, tunkit's policy as subnet and proposals, anything else by length. */
function cfgAttrText(a: CfgAttribute): string {
  if (a.type === TUNKIT_POLICY) {
    try {
      const p = decodeCpPolicy(a.value)
      return `TUNKIT_POLICY=${p.address}/${p.prefix}:${p.proposals.map(transformsText).join('|')}`
    } catch {
      return `TUNKIT_POLICY(malformed,${a.value.length}B)`
    }
  }
  const name = CFG_ATTR_NAMES[a.type] ?? String(a.type)
  if (!a.value.length) return name
  const address = cpAddress(a)
  return address ? `${name}=${address}` : `${name}(${a.value.length}B)`
}

/**
 * One payload for `--trace`: its name and what it says, never key material (KE values, nonces,
 * AUTH data, certificates and notify data are shown by length or not at all; SK as a length,
 * the trace puts its opened contents in its place).
 */
export function payloadText(p: Payload): string {
  const name = PAYLOAD_NAMES[p.type] ?? String(p.type)
  if ('unknown' in p) return `${name}(${p.data.length}B)`
  switch (p.type) {
    case P.SA:
      return `SA(${p.proposals.map((x) => `${PROTOCOL_NAMES[x.protocol] ?? x.protocol}${x.spi.length ? `:${x.spi.toString('hex')}` : ''}:${transformsText(x.transforms.map((t) => ({type: t.type, id: t.id, keyBits: keyLength(t)})))}`).join(' ')})`
    case P.KE:
      return `KE(${DH[p.group] ?? p.group},${p.data.length}B)`
    case P.NONCE:
      return `No(${p.data.length}B)`
    case P.IDi:
    case P.IDr:
      return `${name}(${idToString(p)})`
    case P.AUTH:
      return `AUTH(${AUTH_NAMES[p.method] ?? p.method},${p.data.length}B)`
    case P.CERT:
    case P.CERTREQ:
      return `${name}(${CERT_NAMES[p.encoding] ?? p.encoding},${p.data.length}B)`
    case P.N:
      return `N(${NOTIFY_NAMES[p.notify] ?? p.notify}${p.spi.length ? `:${p.spi.toString('hex')}` : ''})`
    case P.D:
      return `D(${PROTOCOL_NAMES[p.protocol] ?? p.protocol}${p.spis.length ? `:${p.spis.map((s) => s.toString('hex')).join(',')}` : ''})`
    case P.TSi:
    case P.TSr:
      return `${name}(${tsText(p.selectors)})`
    case P.CP:
      return `CP(${CFG_NAMES[p.cfgType] ?? p.cfgType}: ${p.attributes.map(cfgAttrText).join(',')})`
    case P.SK:
      return `SK(${p.data.length}B)`
    default:
      return name
  }
}
