import {Args, Flags} from '@oclif/core'
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {TunkitCommand} from '../../cli/base.js'
import {UsageError} from '../../cli/parse.js'
import * as F from '../../cli/flags.js'
import {defaultPkiDir, identityProblem, sanProblem} from '../../pki/names.js'
import {issue, loadCa, PkiError, writePair} from '../../pki/pki.js'

export default class PkiIssue extends TunkitCommand {
  static override summary = 'Issue another client certificate from the local CA.'
  static override description = 'Writes NAME.crt and NAME.key (0600) into the PKI directory; NAME is the identity the gate sees.'
  static override examples = ['<%= config.bin %> pki issue bob', '<%= config.bin %> portal --gate 127.0.0.1:4433 --cert ~/.config/tunkit/pki/bob.crt --key ~/.config/tunkit/pki/bob.key -D 1080']

  static override args = {
    name: Args.string({description: 'Client identity (certificate subject CN).', required: true}),
  }

  static override flags = {
    dir: Flags.string({summary: 'PKI directory.', env: 'TUNKIT_PKI', helpValue: '<dir>'}),
    days: Flags.integer({summary: 'Validity in days.', default: 825, min: 1}),
    server: Flags.boolean({summary: 'Issue a server (gate) certificate instead; NAME is also its DNS SAN.'}),
    san: F.san({summary: 'Another name in the certificate (subject alternative name): a DNS name or an IP address.', multiple: true}),
    force: Flags.boolean({summary: 'Overwrite an existing certificate of that name.'}),
  }

  async run(): Promise<void> {
    const {args, flags: f} = await this.parse(PkiIssue)
    const why = identityProblem(args.name) ?? (f.server ? sanProblem(args.name) : null)
    if (why) throw new UsageError(`NAME: ${why}`)
    const dir = f.dir ?? defaultPkiDir()
    if (existsSync(join(dir, `${args.name}.crt`)) && !f.force) throw new UsageError(`NAME: ${args.name}.crt exists in ${dir} (use --force)`)
    let ca
    try {
      ca = await loadCa(dir)
    } catch (e) {
      if (e instanceof PkiError) throw new UsageError(`--dir: ${e.message}`)
      throw e
    }
    const sans = f.server ? [args.name, ...(f.san ?? [])] : f.san
    const p = writePair(dir, args.name, await issue(ca, {cn: args.name, role: f.server ? 'server' : 'client', sans, days: f.days}))
    this.logger.event('issued', {name: args.name, cert: p.cert, key: p.key})
    if (!this.jsonMode()) process.stdout.write(`${p.cert}\n${p.key}\n`)
  }
}
