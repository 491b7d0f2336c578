import {Flags} from '@oclif/core'
import {existsSync} from 'node:fs'
import {hostname, userInfo} from 'node:os'
import {join} from 'node:path'
import {TunkitCommand} from '../../cli/base.js'
import {UsageError} from '../../cli/parse.js'
import * as F from '../../cli/flags.js'
import {defaultPkiDir} from '../../pki/names.js'
import {createCa, issue, writePair} from '../../pki/pki.js'

export default class PkiInit extends TunkitCommand {
  static override summary = 'Create a CA, a gate certificate and a client certificate.'
  static override description = `Writes ca.crt/ca.key, gate.crt/gate.key and client.crt/client.key (ECDSA P-256) into the PKI directory, where gate and portal find them when no certificate flags are given. Keys are mode 0600.

Unless --san is given, the gate certificate names localhost, 127.0.0.1, ::1 and this host's name; unless --client is given, the client identity is your user name.`
  static override examples = [
    '<%= config.bin %> pki init',
    '<%= config.bin %> pki init --dir ./pki --san gate.example --san 203.0.113.10 --client alice',
  ]

  static override flags = {
    dir: Flags.string({summary: 'PKI directory.', env: 'TUNKIT_PKI', helpValue: '<dir>'}),
    san: F.san({summary: 'Name of the gate in its certificate (subject alternative name): a DNS name or an IP address.', multiple: true}),
    client: F.identity({summary: 'Identity (subject CN) of the client certificate.'}),
    days: Flags.integer({summary: 'Validity of the certificates in days.', default: 825, min: 1}),
    force: Flags.boolean({summary: 'Overwrite an existing PKI.'}),
  }

  async run(): Promise<void> {
    const {flags: f} = await this.parse(PkiInit)
    const dir = f.dir ?? defaultPkiDir()
    if (existsSync(join(dir, 'ca.key')) && !f.force) throw new UsageError(`--dir: ${dir} already holds a CA (use --force to replace it)`)
    const sans = f.san ?? ['localhost', '127.0.0.1', '::1', hostname()]
    const client = f.client ?? (userInfo().username || 'client')
    const ca = await createCa(`tunkit CA ${hostname()}`, Math.max(f.days, 3650))
    const files = [
      writePair(dir, 'ca', ca),
      writePair(dir, 'gate', await issue(ca, {cn: sans[0], role: 'server', sans, days: f.days})),
      writePair(dir, 'client', await issue(ca, {cn: client, role: 'client', days: f.days})),
    ]
    this.logger.log('info', `PKI written to ${dir}: gate SANs ${sans.join(', ')}; client identity "${client}"`)
    this.logger.event('pki', {dir, sans, client, files: files.flatMap((p) => [p.cert, p.key])})
    if (!this.jsonMode()) process.stdout.write(`${files.map((p) => `${p.cert}\n${p.key}`).join('\n')}\n`)
  }
}
