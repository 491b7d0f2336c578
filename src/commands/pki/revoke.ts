import {Args, Flags} from '@oclif/core'
import {TunkitCommand} from '../../cli/base.js'
import {UsageError} from '../../cli/parse.js'
import {defaultPkiDir, identityProblem} from '../../pki/names.js'
import {PkiError, revoke} from '../../pki/pki.js'

export default class PkiRevoke extends TunkitCommand {
  static override summary = 'Revoke a certificate: add it to the PKI directory\'s revocation list (crl.pem).'
  static override description = `NAME is a certificate of the PKI directory: NAME.crt, or else every certificate whose identity (subject CN) is NAME. The CA signs a new revocation list (an X.509 CRL), crl.pem, mode 0600.

A gate that uses the PKI directory reads the list at start and on SIGHUP: from then on the certificate is refused, and the tunnels that use it are closed.`
  static override examples = ['<%= config.bin %> pki revoke bob', 'kill -HUP "$(pidof tunkit-gate)"  # or: systemctl reload tunkit-gate']

  static override args = {
    name: Args.string({description: 'Certificate name (NAME.crt) or identity (subject CN).', required: true}),
  }

  static override flags = {
    dir: Flags.string({summary: 'PKI directory.', env: 'TUNKIT_PKI', helpValue: '<dir>'}),
  }

  async run(): Promise<void> {
    const {args, flags: f} = await this.parse(PkiRevoke)
    const why = identityProblem(args.name)
    if (why) throw new UsageError(`NAME: ${why}`)
    const dir = f.dir ?? defaultPkiDir()
    let r
    try {
      r = await revoke(dir, args.name)
    } catch (e) {
      if (e instanceof PkiError) throw new UsageError(`NAME: ${e.message}`)
      throw e
    }
    for (const c of r.revoked) {
      this.logger.log('info', `revoked ${c.name}.crt (identity ${c.identity}, serial ${c.serial}); send the gate SIGHUP to apply it`)
      this.logger.event('revoked', {name: c.name, identity: c.identity, serial: c.serial, crl: r.crl})
    }
    for (const c of r.already) this.logger.log('info', `${c.name}.crt (serial ${c.serial}) was already revoked`)
    if (!this.jsonMode()) process.stdout.write(`${r.crl}\n`)
  }
}
