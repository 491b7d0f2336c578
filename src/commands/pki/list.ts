import {Flags} from '@oclif/core'
import {TunkitCommand} from '../../cli/base.js'
import {UsageError} from '../../cli/parse.js'
import {defaultPkiDir} from '../../pki/names.js'
import {listCertificates, PkiError} from '../../pki/pki.js'

export default class PkiList extends TunkitCommand {
  static override summary = 'List the certificates of the PKI directory: name, serial, role, expiry, revoked.'
  static override description = 'One line per certificate (the CA\'s aside); with --json one "certificate" event each.'
  static override examples = ['<%= config.bin %> pki list', '<%= config.bin %> pki list --dir ./pki --json']

  static override flags = {
    dir: Flags.string({summary: 'PKI directory.', env: 'TUNKIT_PKI', helpValue: '<dir>'}),
  }

  async run(): Promise<void> {
    const {flags: f} = await this.parse(PkiList)
    const dir = f.dir ?? defaultPkiDir()
    let certs
    try {
      certs = listCertificates(dir)
    } catch (e) {
      if (e instanceof PkiError) throw new UsageError(`--dir: ${e.message}`)
      throw e
    }
    if (this.jsonMode()) {
      for (const c of certs) this.logger.event('certificate', {...c})
      return
    }
    const rows = [['NAME', 'IDENTITY', 'SERIAL', 'ROLE', 'EXPIRES', 'REVOKED'], ...certs.map((c) => [c.name, c.identity, c.serial, c.role, c.expires.slice(0, 10), c.revoked ? 'yes' : 'no'])]
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
    process.stdout.write(rows.map((r) => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]))).join('  ')).join('\n') + '\n')
  }
}
