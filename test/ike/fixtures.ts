import {readFileSync} from 'node:fs'

/** The strongSwan capture made by scripts/ike-capture.sh (test/fixtures/ike/). */

export interface Captured {
  /** Line number in messages.txt, for failure messages. */
  line: number
  dir: 'i>r' | 'r>i'
  sport: number
  /** The IKE message (the non-ESP marker of port 4500 removed). */
  raw: Buffer
}

const DIR = 'test/fixtures/ike'

export function capturedMessages(): Captured[] {
  const out: Captured[] = []
  readFileSync(`${DIR}/messages.txt`, 'utf8').split('\n').forEach((l, i) => {
    if (!l || l.startsWith('#')) return
    const [dir, ports, hex] = l.split(' ')
    const sport = Number(ports.split('->')[0])
    const udp = Buffer.from(hex, 'hex')
    out.push({line: i + 1, dir: dir as Captured['dir'], sport, raw: sport === 4500 ? udp.subarray(4) : udp})
  })
  return out
}

/** One line of keys.txt: "<conn|n> label = hex". */
export interface KeyDump {
  sa: string
  label: string
  value: Buffer
}

export function keyDumps(): KeyDump[] {
  return readFileSync(`${DIR}/keys.txt`, 'utf8').split('\n').filter(Boolean).map((l) => {
    const m = /^(<[^>]*>) (.*) = ([0-9a-f]*)$/.exec(l)
    if (!m) throw new Error(`keys.txt: cannot read ${l}`)
    return {sa: m[1], label: m[2], value: Buffer.from(m[3], 'hex')}
  })
}

/** The IKE_SA key sets in the order charon derived them (each starts with the DH secret). */
export function ikeKeySets(): Map<string, Buffer>[] {
  const sets: Map<string, Buffer>[] = []
  for (const d of keyDumps()) {
    if (d.label === 'shared Diffie Hellman secret') sets.push(new Map())
    if (sets.length && /^(shared Diffie Hellman secret|SKEYSEED|Sk_\w+ secret)$/.test(d.label)) sets[sets.length - 1].set(d.label, d.value)
  }
  return sets
}

/** The lab's PSK (/work/shared/lab/ipsec/README.md). */
export const LAB_PSK = Buffer.from('ks-lab-psk-2f7c9e41')
