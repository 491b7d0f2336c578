import {CodecError} from '../../lib/errors.js'
import {formatIPv4, formatIPv6, ipv4Bytes, ipv6Bytes, isIPv4, isIPv6} from '../../lib/net/ip.js'
import {IdType} from './constants.js'
import {encodeDn, formatDn, printable} from './dn.js'

/** Identification (§3.5) and Authentication (§3.8) payloads. */

export interface IdBody {
  idType: number
  data: Buffer
}

export interface AuthBody {
  method: number
  data: Buffer
}

/** Identities longer than this are refused: a DN or FQDN this long is an attack, not a name. */
const MAX_ID = 2048

export function decodeId(b: Buffer): IdBody {
  if (b.length < 5) throw new CodecError('TRUNCATED', 'ID: truncated')
  if (b.length - 4 > MAX_ID) throw new CodecError('LIMIT', 'ID: too long')
  const id = {idType: b[0], data: Buffer.from(b.subarray(4))}
  const want = id.idType === IdType.IPV4_ADDR ? 4 : id.idType === IdType.IPV6_ADDR ? 16 : undefined
  if (want !== undefined && id.data.length !== want) throw new CodecError('BAD_ID', `ID: an address of ${id.data.length} bytes`)
  return id
}

export function encodeId(id: IdBody): Buffer {
  const h = Buffer.alloc(4)
  h[0] = id.idType
  return Buffer.concat([h, id.data])
}

/**
 * An identity from text, as `--id`/`--remote-id` take it (strongSwan's rules): an IPv4/IPv6
 * literal is an IP address; `@host` is an FQDN whatever follows; text with `=` is a DN
 * (`C=ZZ, O=x, CN=y`, sent as DER); `user@domain` is RFC822; anything else an FQDN. A DN that does
 * not parse throws CodecError.
 */
export function idFromString(s: string): IdBody {
  if (isIPv4(s)) return {idType: IdType.IPV4_ADDR, data: ipv4Bytes(s)}
  if (isIPv6(s)) return {idType: IdType.IPV6_ADDR, data: ipv6Bytes(s)}
  if (s.startsWith('@')) return {idType: IdType.FQDN, data: Buffer.from(s.slice(1), 'utf8')}
  if (s.includes('=')) return {idType: IdType.DER_ASN1_DN, data: encodeDn(s)}
  return {idType: s.includes('@') ? IdType.RFC822_ADDR : IdType.FQDN, data: Buffer.from(s, 'utf8')}
}

/** Readable form of an identity, on one line (DNs as text when they parse; other types in hex). */
export function idToString(id: IdBody): string {
  switch (id.idType) {
    case IdType.IPV4_ADDR: return formatIPv4(id.data, 0)
    case IdType.IPV6_ADDR: return formatIPv6(id.data, 0)
    case IdType.FQDN:
    case IdType.RFC822_ADDR: return printable(id.data.toString('utf8'))
    case IdType.DER_ASN1_DN:
      try {
        return formatDn(id.data)
      } catch {
        // A peer's malformed DN is still shown, as bytes.
      }
  }
  return `${id.idType}:${id.data.toString('hex')}`
}

export function decodeAuth(b: Buffer): AuthBody {
  if (b.length < 5) throw new CodecError('TRUNCATED', 'AUTH: truncated')
  return {method: b[0], data: Buffer.from(b.subarray(4))}
}

export function encodeAuth(a: AuthBody): Buffer {
  const h = Buffer.alloc(4)
  h[0] = a.method
  return Buffer.concat([h, a.data])
}
