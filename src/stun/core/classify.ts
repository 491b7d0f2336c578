import type {TransportAddress} from '../codec/message.js'

/** RFC 4787 behaviours, as RFC 5780 section 4 discovers them. */
export type Behaviour = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent' | 'unknown'
export type Recommendation = 'direct' | 'nat-t' | 'wrap'

export interface Observations {
  local: TransportAddress
  /** Test I: mapped address seen by the primary address and port. */
  mapped1?: TransportAddress
  /** Test II: seen by the alternate address, primary port. */
  mapped2?: TransportAddress
  /** Test III: seen by the alternate address and port. */
  mapped3?: TransportAddress
  /** Filtering tests: a response came from the alternate address and port / only port. */
  filterChangeIpPort?: boolean
  filterChangePort?: boolean
  hairpinning: boolean | null
  bindingLifetimeSec: number | null
  otherAddressKnown: boolean
}

export interface Classification {
  natPresent: boolean
  mapping: Behaviour
  filtering: Behaviour
  portPreserved: boolean
  recommendation: Recommendation
  reasons: string[]
}

const same = (a?: TransportAddress, b?: TransportAddress): boolean => !!a && !!b && a.address === b.address && a.port === b.port

/** NAT-T keepalives are sent every 20 s (RFC 3948 section 4); a shorter binding breaks it. */
const NAT_T_KEEPALIVE = 20

export function classifyNat(o: Observations): Classification {
  const reasons: string[] = []
  if (!o.mapped1) {
    return {natPresent: false, mapping: 'unknown', filtering: 'unknown', portPreserved: false, recommendation: 'wrap',
      reasons: ['no Binding response: UDP to the server is blocked or dropped; wrap the traffic (TCP portal/gate tunnel or L2TP over a reachable port)']}
  }
  const natPresent = !same(o.mapped1, o.local)
  let mapping: Behaviour = 'unknown'
  if (!natPresent) mapping = 'endpoint-independent'
  else if (!o.otherAddressKnown) reasons.push('the server gave no OTHER-ADDRESS (no RFC 5780 support): mapping and filtering cannot be tested')
  else if (o.mapped2 && same(o.mapped1, o.mapped2)) mapping = 'endpoint-independent'
  else if (o.mapped2 && o.mapped3) mapping = same(o.mapped2, o.mapped3) ? 'address-dependent' : 'address-and-port-dependent'
  else reasons.push('no answer from the alternate address: mapping unknown')
  let filtering: Behaviour = 'unknown'
  if (o.filterChangeIpPort) filtering = 'endpoint-independent'
  else if (o.filterChangePort) filtering = 'address-dependent'
  else if (o.filterChangeIpPort === false && o.filterChangePort === false) filtering = 'address-and-port-dependent'
  let recommendation: Recommendation = natPresent ? 'nat-t' : 'direct'
  if (!natPresent) reasons.push('no NAT between this host and the server: plain IPsec (ESP) can work')
  else reasons.push('a NAT is present: IPsec needs NAT traversal (ESP in UDP 4500, RFC 3948)')
  if (natPresent && o.bindingLifetimeSec !== null && o.bindingLifetimeSec < NAT_T_KEEPALIVE) {
    recommendation = 'wrap'
    reasons.push(`idle UDP bindings survived ${o.bindingLifetimeSec} s but not the next step: shorter than the ${NAT_T_KEEPALIVE} s between NAT-T keepalives, so wrap the traffic`)
  }
  return {natPresent, mapping, filtering, portPreserved: o.mapped1.port === o.local.port, recommendation, reasons}
}
