import {setFlagsFromString} from 'node:v8'
import {Flags} from '@oclif/core'
import {createPrivateKey, X509Certificate} from 'node:crypto'
import {readFileSync, statSync} from 'node:fs'
import {TunkitCommand} from '../cli/base.js'
import * as F from '../cli/flags.js'
import {UsageError} from '../cli/parse.js'
import {secretModeProblem} from '../lib/io/tls-config.js'
import {loadTls, PEM_CERT, TlsConfigError} from '../lib/io/tls-config.js'
import type {CertCredentials} from '../ike/core/auth.js'
import {ProtocolId} from '../ike/codec/constants.js'
import {idFromString, type IdBody} from '../ike/codec/id.js'
import {tsText, suiteText} from '../ike/core/describe.js'
import type {Action, ChildSa, Established} from '../ike/core/exchange.js'
import {espPolicies, parseProposals, type Policy} from '../ike/core/proposals.js'
import {IkeClient, resolveGateway} from '../ike/io/client.js'
import {findResolvconf} from '../lib/io/resolvconf.js'
import {IkeGateway} from '../ike/io/gateway.js'
import {MAX_SAS_PER_ID} from '../ike/core/responder.js'
import {openPlane} from '../ike/io/plane.js'
import {parseCidr4, type Cidr} from '../vpn/core/pushed.js'

/** `--policy SUBNET[=PROPOSALS]`: a protected subnet and the ESP transforms for it. */
export interface SubnetPolicy {
  subnet: string
  esp: Policy[]
}

export function parsePolicy(s: string): SubnetPolicy {
  const [net, proposals] = s.split('=', 2)
  const c = parseCidr4(net.trim())
  if (!c) throw new UsageError(`--policy: "${net}" is not an IPv4 CIDR (e.g. 198.18.1.0/24=aes256gcm16)`)
  try {
    return {subnet: `${net.trim().split('/')[0]}/${c.prefix}`, esp: proposals ? parseProposals(proposals, ProtocolId.ESP) : espPolicies()}
  } catch (e) {
    throw new UsageError(`--policy: ${(e as Error).message}`)
  }
}

export default class KeyExchange extends TunkitCommand {
  static override summary = 'IKEv2 with configuration push and an ESP tunnel: connect to a gateway, or be one.'
  static override description = `Client (--gateway): offers every algorithm tunkit supports, authenticates with a pre-shared key or a certificate, gets an address, DNS servers and the protected subnets from the gateway, and carries traffic to them through ESP in UDP on a TUN device. Works with strongSwan and other standard IKEv2 gateways.

Gateway (--respond): answers clients with the first of its own preferences they offered, leases addresses from --pool by identity, and protects the --policy subnets, each with its own ESP transforms.

Both run in the foreground until SIGINT or SIGTERM, when they delete their SAs. They need root (or CAP_NET_ADMIN) for the TUN device.`

  static override examples = [
    '<%= config.bin %> key-exchange --respond --listen 203.0.113.1 --psk-file gw.psk --pool 198.18.200.0/24 --dns 198.18.1.53 --policy 198.18.1.0/24=aes256gcm16',
    '<%= config.bin %> key-exchange --gateway 203.0.113.1 --psk-file my.psk',
    '<%= config.bin %> key-exchange --gateway 203.0.113.1 --psk-file my.psk --json',
    '<%= config.bin %> key-exchange --gateway 203.0.113.1 --cert c.crt --key c.key --ca ca.crt',
  ]

  static override flags = {
    gateway: Flags.string({char: 'g', summary: 'Connect to this gateway (host name or address).', exclusive: ['respond']}),
    respond: Flags.boolean({summary: 'Be a gateway: answer clients.'}),
    listen: Flags.string({summary: 'Gateway: the address to answer on (UDP 500 and 4500).', default: '0.0.0.0'}),
    bind: Flags.string({summary: 'Client: the local address to send from.'}),
    'psk-file': Flags.string({summary: 'File holding the pre-shared key (its first line).', helpValue: '<file>'}),
    cert: Flags.string({summary: 'Our certificate (PEM, intermediates may follow it): authenticate with it (RSA or ECDSA).', helpValue: '<file>', dependsOn: ['key', 'ca']}),
    key: Flags.string({summary: 'The private key of --cert (PEM).', helpValue: '<file>', dependsOn: ['cert']}),
    ca: Flags.string({summary: 'CA certificates (PEM, one or more) a peer\'s certificate must chain to.', helpValue: '<file>', dependsOn: ['cert']}),
    id: Flags.string({summary: 'Our identity: an address, user@domain, a host name (@host forces one) or a DN "C=ZZ, O=x, CN=y" (default: the certificate\'s first DNS name or subject, else our address).'}),
    'remote-id': Flags.string({summary: 'The identity the peer must prove, same forms as --id (default: any its PSK or certificate proves).'}),
    pool: F.ipv4Cidr({summary: 'Gateway: lease client addresses from this network (its first address is the gateway\'s).', helpGroup: 'GATEWAY'}),
    dns: Flags.string({summary: 'Gateway: a DNS server to push.', multiple: true, helpGroup: 'GATEWAY'}),
    policy: Flags.string({summary: 'Gateway: a protected subnet and its ESP proposals, SUBNET[=PROPOSALS] (e.g. 198.18.1.0/24=aes256gcm16).', multiple: true, helpGroup: 'GATEWAY'}),
    'ike-proposal': Flags.string({summary: 'Gateway: accept only these IKE proposals, comma-separated (e.g. aes128-sha1-modp2048).', helpGroup: 'GATEWAY'}),
    'max-sas-per-id': Flags.integer({summary: 'Gateway: IKE_SAs one client identity may hold at once; beyond it IKE_AUTH is refused (INITIAL_CONTACT replaces them instead).', min: 1, default: MAX_SAS_PER_ID, helpGroup: 'GATEWAY'}),
    dev: Flags.string({summary: 'Name of the TUN device.', default: 'tunkit-ike0'}),
    dpd: F.duration({summary: 'Check that the peer is alive after this long without a message or ESP packet from it (0 = never).', default: 30}),
    'accept-routes': F.ipv4Cidr({summary: 'Client: route only pushed subnets inside these networks.', multiple: true}),
    'connect-timeout': F.duration({summary: 'Client: time for the gateway\'s name to resolve and the IKE_SA to come up (seconds, or 500ms, 30s, 5m).', default: 30}),
    'dns-apply': Flags.boolean({summary: 'Client: hand the pushed DNS servers to resolvconf while connected (without it they are only reported).'}),
    export: Flags.option({options: ['json'] as const, summary: 'Client: print the negotiated SAs on stdout once every CHILD_SA the gateway pushed a policy for is up, for scripts.'})(),
    'show-keys': Flags.boolean({summary: 'With --export: include the key material (never logged).'}),
  }

  async run(): Promise<void> {
    const {flags: f} = await this.parse(KeyExchange)
    // Each SA keeps a few dozen small Buffers (SPIs, keys, nonces) for hours; from Node's shared
    // 8 KB pool, each pins its slab: 14 KB a gateway client instead of 1.5 KB (measured).
    Buffer.poolSize = 0
    // V8 grows the young generation to 32 MB under a burst of handshakes and keeps it: a third of a
    // gateway's memory with 10 000 SAs. What lives for hours goes to the old generation anyway.
    setFlagsFromString('--semi-space-growth-factor=1')
    if (!f.gateway && !f.respond) throw new UsageError('give --gateway HOST to connect, or --respond to be a gateway')
    if (!f['psk-file'] && !f.cert) throw new UsageError('give --psk-file, or --cert, --key and --ca')
    if (f['psk-file'] && f.cert && !f.respond) throw new UsageError('a client authenticates with --psk-file or --cert, not both')
    const resolvconf = f['dns-apply'] && !f.respond ? findResolvconf() : undefined
    if (f['dns-apply'] && !f.respond && !resolvconf) throw new UsageError('--dns-apply needs resolvconf (openresolv, resolvconf or systemd-resolved), and there is none on PATH')
    const psk = f['psk-file'] ? readPsk(f['psk-file'], (m) => this.logger.log('warn', m)) : undefined
    const certs = f.cert ? loadCerts({cert: f.cert, key: f.key!, ca: f.ca!}, f.respond ? 'gate' : 'client', (m) => this.logger.log('warn', m)) : undefined
    // --connect-timeout bounds the name's lookup and the IKE_SA's set-up together.
    const deadline = Date.now() + f['connect-timeout'] * 1000
    const gateway = f.respond ? '' : await resolveGateway(f.gateway!, f['connect-timeout'] * 1000)
    const plane = await openPlane(f.respond ? f.listen : f.bind ?? '0.0.0.0')
    const signal = this.waitForSignal()
    if (f.respond) return this.respond(f, {psk, certs}, plane, signal)
    const accept = f['accept-routes']?.map((c) => parseCidr4(c)!) ?? null
    const client = new IkeClient({
      gateway,
      bind: f.bind,
      auth: {...ids(f), auth: psk ? {psk} : certs!.creds, ...(certs ? {ca: certs.ca} : {}), dpdMs: f.dpd * 1000},
      dev: f.dev,
      accept: accept as Cidr[] | null,
      plane,
      log: this.logger,
      tracer: this.tracer,
      setupMs: Math.max(1, deadline - Date.now()),
      ...(resolvconf ? {resolvconf} : {}),
      on: (a) => this.event(a, 'initiator'),
    })
    try {
      const sa = await Promise.race([client.start(), signal.then(() => undefined)])
      // Once every pushed policy's CHILD_SA is up or refused (a failure on the way ends the wait).
      const children = sa && f.export === 'json' ? await Promise.race([client.children, client.ended.then(() => undefined), signal.then(() => undefined)]) : undefined
      if (sa && children) process.stdout.write(JSON.stringify(exportSa(sa, children, f['show-keys'])) + '\n')
      const why = sa ? await Promise.race([client.ended, signal.then(() => undefined)]) : undefined
      if (why) throw why
    } finally {
      await client.stop()
      plane.close()
    }
  }

  private async respond(f: {listen: string; pool?: string; dns?: string[]; policy?: string[]; 'ike-proposal'?: string; 'max-sas-per-id': number; dev: string; id?: string; dpd: number}, auth: {psk?: Buffer; certs?: {creds: CertCredentials; ca: X509Certificate[]}}, plane: Awaited<ReturnType<typeof openPlane>>, signal: Promise<NodeJS.Signals>): Promise<void> {
    if (!f.pool) throw new UsageError('--respond needs --pool (the network client addresses are leased from)')
    if (!f.policy?.length) throw new UsageError('--respond needs at least one --policy SUBNET[=PROPOSALS]')
    const policies = f.policy.map(parsePolicy)
    let ike: Policy[] | undefined
    try {
      ike = f['ike-proposal'] ? parseProposals(f['ike-proposal'], ProtocolId.IKE) : undefined
    } catch (e) {
      throw new UsageError(`--ike-proposal: ${(e as Error).message}`)
    }
    const gw = new IkeGateway({
      listen: f.listen,
      responder: {
        ...ids(f),
        dpdMs: f.dpd * 1000,
        maxSasPerId: f['max-sas-per-id'],
        ...(auth.psk ? {psk: () => auth.psk} : {}),
        ...(auth.certs ? {cert: auth.certs.creds, ca: auth.certs.ca} : {}),
        ...(ike ? {ike} : {}),
        esp: policies.flatMap((p) => p.esp),
        subnets: policies.map((p) => p.subnet),
        // Each subnet with its own transforms, pushed to tunkit clients (one CHILD_SA per policy).
        policies,
        dns: f.dns ?? [],
      },
      pool: f.pool,
      dev: f.dev,
      plane,
      log: this.logger,
      tracer: this.tracer,
      on: (a) => this.event(a, 'responder'),
    })
    try {
      await this.listenOn('--listen', () => gw.start())
      this.logger.log('info', `IKEv2 gateway on ${f.listen} (UDP 500, 4500), pool ${f.pool}, protecting ${policies.map((p) => p.subnet).join(', ')}`)
      this.logger.event('listening', {address: f.listen, port: 500})
      const sig = await signal
      this.logger.event('stopped', {signal: sig, established: gw.established, halfOpen: gw.halfOpen})
    } finally {
      await gw.stop()
      plane.close()
    }
  }

  /** sa-up, sa-down, child-up, rekey and error events (--json). */
  private event(a: Action, role: 'initiator' | 'responder'): void {
    const spi = (b: Buffer): string => b.toString('hex')
    switch (a.type) {
      case 'established':
        this.logger.event('sa-up', {peer: `${a.sa.peer.address}:${a.sa.peer.port}`, peerId: a.sa.peerId, ike: suiteText(a.sa.ike), spiI: spi(a.sa.spiI), spiR: spi(a.sa.spiR), vip: a.sa.vip ?? null, dns: a.sa.dns, child: childEvent(a.sa.child, role)})
        break
      case 'rekeyed':
        this.logger.event('rekey', {spiI: spi(a.spiI), by: a.by, old: childEvent(a.old, role), child: childEvent(a.child, role)})
        break
      case 'child-up':
        this.logger.event('child-up', {spiI: spi(a.spiI), child: childEvent(a.child, role)})
        break
      case 'child-failed':
        this.logger.event('child-failed', {spiI: spi(a.spiI), code: a.error.code, reason: a.error.message})
        break
      case 'ike-rekeyed':
        this.logger.event('ike-rekey', {oldSpiI: spi(a.oldSpiI), spiI: spi(a.sa.spiI), spiR: spi(a.sa.spiR), ike: suiteText(a.sa.ike)})
        break
      case 'deleted':
        this.logger.event('sa-down', {spiI: spi(a.spiI), what: a.what, by: a.by, spis: a.spis.map(spi), ...(a.why ? {reason: a.why} : {})})
        break
      case 'failed':
        if (role === 'responder') this.logger.event('sa-failed', {spiI: spi(a.spiI), code: a.error.code, reason: a.error.message})
        break
    }
  }
}

function childEvent(c: ChildSa, role: 'initiator' | 'responder'): Record<string, unknown> {
  const [inSpi, outSpi] = role === 'initiator' ? [c.spiI, c.spiR] : [c.spiR, c.spiI]
  return {esp: suiteText(c.suite), spiIn: inSpi.toString('hex'), spiOut: outSpi.toString('hex'), tsI: tsText(c.tsI), tsR: tsText(c.tsR)}
}

/** --export json: the SAs for scripts; keys only with --show-keys. */
function exportSa(sa: Established, children: ChildSa[], keys: boolean): Record<string, unknown> {
  return {
    ike: {peer: sa.peer, peerId: sa.peerId, suite: suiteText(sa.ike), spiI: sa.spiI.toString('hex'), spiR: sa.spiR.toString('hex'), nat: sa.nat},
    vip: sa.vip ?? null,
    dns: sa.dns,
    children: children.map((c) => ({...childEvent(c, 'initiator'), ...(keys ? {keys: {encI: c.keys.encI.toString('hex'), integI: c.keys.integI.toString('hex'), encR: c.keys.encR.toString('hex'), integR: c.keys.integR.toString('hex')}} : {})})),
  }
}

/** --id and --remote-id as IKE identities (a DN that does not parse is a usage error). */
function ids(f: {id?: string; 'remote-id'?: string}): {id?: IdBody; remoteId?: IdBody} {
  const parse = (flag: string, s: string): IdBody => {
    try {
      return idFromString(s)
    } catch (e) {
      throw new UsageError(`--${flag}: ${(e as Error).message}`)
    }
  }
  return {...(f.id ? {id: parse('id', f.id)} : {}), ...(f['remote-id'] ? {remoteId: parse('remote-id', f['remote-id'])} : {})}
}

/**
 * --cert, --key and --ca, checked as tunkit's TLS files are (key matches, purpose, validity, CAs
 * only; lib/io/tls-config.ts), then as node:crypto objects: our chain (the file's certificates in
 * order) and every CA of the --ca file.
 */
function loadCerts(files: {cert: string; key: string; ca: string}, role: 'gate' | 'client', warn: (m: string) => void): {creds: CertCredentials; ca: X509Certificate[]} {
  let m
  try {
    m = loadTls(files, role, warn)
  } catch (e) {
    if (e instanceof TlsConfigError) throw new UsageError(e.message)
    throw e
  }
  const pems = (text: string): X509Certificate[] => (text.match(PEM_CERT) ?? []).map((p) => new X509Certificate(p))
  return {creds: {cert: pems(m.cert), key: createPrivateKey(m.key)}, ca: pems(m.ca)}
}

/** The PSK: the file's first line. A file others may read gets a warning, as a key does. */
function readPsk(path: string, warn: (m: string) => void): Buffer {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
    const mode = statSync(path).mode
    const loose = secretModeProblem('--psk-file', path, mode)
    if (loose) warn(loose)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new UsageError(`--psk-file: ${path} cannot be read: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code} (${code})`)
  }
  const line = text.split(/\r?\n/, 1)[0]
  if (!line) throw new UsageError(`--psk-file: ${path} is empty`)
  return Buffer.from(line, 'utf8')
}
