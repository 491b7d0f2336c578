import {execFile, execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {resolve} from 'node:path'
import {promisify} from 'node:util'
import {missing} from './requires.js'

/**
 * The project's IPsec lab (test/lab/ipsec/lab.sh, described in its README.md): unmodified
 * strongSwan peers in network namespaces named after `prefix`, for tests of tunkit's IKEv2/ESP.
 * Use with `unless(suite, ipsecLabMissing())` and call `down()` in `finally` (or an `after` hook).
 */
export const LAB = resolve('test/lab/ipsec/lab.sh')
const run = promisify(execFile)
const CHARON = '/usr/lib/ipsec/charon'

export type Role = 'gw' | 'cli'
export type Ns = 'cli' | 'gw' | 'priv' | 'nat'

export interface IpsecLabOptions {
  /** `tk` + 1 to 10 of [a-z0-9], unique to the test; namespaces, interfaces and files follow it. */
  prefix: string
  /** Both charons (default), only the gateway (tunkit initiates), or only the client (tunkit responds). */
  mode?: 'both' | 'responder-only' | 'initiator-only'
  /** A MASQUERADE router between client and gateway. */
  nat?: boolean
  /** The gateway accepts only IKE aes128-sha1-modp2048 and ESP aes128-sha1, or the given pair. */
  narrow?: boolean | {ike: string; esp: string}
  /** The gateway's dpd_delay in seconds (default 30): 1 makes `dpd()` quick. */
  dpdDelay?: number
  /** Each charon also logs its IKE and ESP keys (charon-keys.log beside charon.log). */
  logKeys?: boolean
}

/** PEM files: the certificate, its key (SEC1 or PKCS#1) and the same key as PKCS#8. */
export interface KeyPair {cert: string; key: string; pkcs8: string}

export interface IpsecLab {
  prefix: string
  /** The lab's runtime directory (logs, configs, vici sockets). */
  run: string
  ns: {cli: string; gw: string; priv: string; nat?: string}
  ifaces: {cli: string; gwPublic: string; gwPrivate: string; priv: string; natInside?: string; natOutside?: string}
  addresses: {
    gateway: string
    /** The client's own address: 203.0.113.2 direct, 198.51.100.2 behind the NAT. */
    client: string
    /** Where the gateway sees the client: always 203.0.113.2. */
    clientPublic: string
    natInside?: string
    gatewayPrivate: string
    privateHost: string
    privateNet: string
    dns: string
    pool: string
  }
  psk: string
  ids: {gw: string; gwRsa: string; clientPsk: string; client: string; clientRsa: string}
  pki: {
    dir: string
    caEcdsa: string
    caRsa: string
    gwEcdsa: KeyPair
    gwRsa: KeyPair
    clientEcdsa: KeyPair
    clientRsa: KeyPair
  }
  up(): Promise<void>
  down(): Promise<void>
  /** Runs argv in one of the lab's namespaces; rejects on a non-zero exit (the error has stdout/stderr). */
  exec(ns: Ns, argv: string[], timeoutMs?: number): Promise<{stdout: string; stderr: string}>
  swanctl(role: Role, args: string[]): Promise<string>
  /** Initiates a connection of the client charon (conf/cli/swanctl.conf) and waits for it. */
  connect(name: string): Promise<void>
  disconnect(): Promise<void>
  /** Rekeys the first CHILD_SA / IKE_SA of that daemon (default the gateway) and waits for its successor. */
  rekeyChild(role?: Role): Promise<string>
  rekeyIke(role?: Role): Promise<string>
  /** Waits for the gateway's next DPD and its answer; gives the two log lines. */
  dpd(timeoutSec?: number): Promise<string>
  logs(role: Role): string
}

/** Why the lab cannot run here (not root, TK_TEST_FORCE_SKIP, or strongSwan missing and not installable), or null. */
export function ipsecLabMissing(): string | null {
  const why = missing(['ip', 'iptables', 'unshare', 'flock', 'ping'])
  if (why) return why
  const have = (): boolean => {
    try {
      execFileSync('sh', ['-c', `test -x ${CHARON} && command -v swanctl && command -v pki`], {stdio: 'ignore'})
      return true
    } catch {
      return false
    }
  }
  if (have()) return null
  try {
    execFileSync('bash', [LAB, 'deps'], {stdio: 'ignore', timeout: 300_000})
  } catch {
    /* reported below */
  }
  return have() ? null : 'needs strongSwan (charon, swanctl, pki), which could not be installed (see /tmp/tk-ipsec-apt.log)'
}

export function ipsecLab(opts: IpsecLabOptions): IpsecLab {
  const {prefix, mode = 'both', nat = false, narrow = false, dpdDelay, logKeys = false} = opts
  if (!/^tk[a-z0-9]{1,10}$/.test(prefix)) throw new Error(`ipsec lab prefix must be tk + 1 to 10 of [a-z0-9], not ${prefix}`)
  const env = {...process.env, TK_IPSEC_PREFIX: prefix}
  const lab = (args: string[], timeout = 60_000) => run('bash', [LAB, ...args], {env, timeout}).then((r) => r.stdout)
  const dir = '/tmp/tk-ipsec-pki'
  const pair = (name: string) => ({cert: `${dir}/${name}.crt`, key: `${dir}/${name}.key`, pkcs8: `${dir}/${name}.p8.pem`})
  const runDir = `/tmp/${prefix}-ipsec`
  return {
    prefix,
    run: runDir,
    ns: {cli: `${prefix}-cli`, gw: `${prefix}-gw`, priv: `${prefix}-priv`, ...(nat ? {nat: `${prefix}-nat`} : {})},
    ifaces: {cli: `${prefix}c0`, gwPublic: `${prefix}g0`, gwPrivate: `${prefix}g1`, priv: `${prefix}p0`, ...(nat ? {natInside: `${prefix}n0`, natOutside: `${prefix}n1`} : {})},
    addresses: {
      gateway: '203.0.113.1',
      client: nat ? '198.51.100.2' : '203.0.113.2',
      clientPublic: '203.0.113.2',
      ...(nat ? {natInside: '198.51.100.1'} : {}),
      gatewayPrivate: '198.18.1.1',
      privateHost: '198.18.1.10',
      privateNet: '198.18.1.0/24',
      dns: '198.18.1.53',
      pool: '198.18.200.0/24',
    },
    psk: 'ks-lab-psk-2f7c9e41',
    ids: {gw: 'gw.ks.test', gwRsa: 'gw-rsa.ks.test', clientPsk: 'client-psk.ks.test', client: 'client.ks.test', clientRsa: 'client-rsa.ks.test'},
    pki: {dir, caEcdsa: `${dir}/ca-ecdsa.crt`, caRsa: `${dir}/ca-rsa.crt`, gwEcdsa: pair('gw-ecdsa'), gwRsa: pair('gw-rsa'), clientEcdsa: pair('client-ecdsa'), clientRsa: pair('client-rsa')},
    async up() {
      const args = ['up', '--no-connect']
      if (mode !== 'both') args.push(`--${mode}`)
      if (nat) args.push('--nat')
      if (narrow === true) args.push('--narrow')
      else if (narrow) args.push('--proposals', narrow.ike, narrow.esp)
      if (dpdDelay !== undefined) args.push('--dpd-delay', String(dpdDelay))
      if (logKeys) args.push('--log-keys')
      // the first up on a machine also generates the PKI (RSA-3072 keys: seconds)
      await lab(args, 180_000)
    },
    async down() {
      await lab(['down'])
    },
    exec(ns, argv, timeoutMs = 30_000) {
      // never with the lab's marker: down must not take what a test started for a lab daemon
      const clean = {...process.env}
      delete clean.TK_IPSEC_LAB
      return run('ip', ['netns', 'exec', `${prefix}-${ns}`, ...argv], {env: clean, timeout: timeoutMs})
    },
    swanctl: (role, args) => lab(['swanctl', role, ...args]),
    async connect(name) {
      await lab(['connect', name])
    },
    async disconnect() {
      await lab(['disconnect'])
    },
    rekeyChild: (role = 'gw') => lab(['rekey', 'child', role]),
    rekeyIke: (role = 'gw') => lab(['rekey', 'ike', role]),
    dpd: (timeoutSec = 10) => lab(['dpd', String(timeoutSec)], (timeoutSec + 10) * 1000),
    logs: (role) => readFileSync(`${runDir}/${role}/charon.log`, 'utf8'),
  }
}
