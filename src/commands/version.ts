import {TunkitCommand} from '../cli/base.js'

export default class Version extends TunkitCommand {
  static override summary = 'Print the version of tunkit and of Node.js.'
  static override description = 'The same line as "tunkit --version" and "tunkit -v"; with --json, a JSON object.'

  async run(): Promise<void> {
    await this.parse(Version)
    const {version, platform, arch} = this.config
    if (this.jsonMode()) process.stdout.write(JSON.stringify({version, node: process.version, platform, arch}) + '\n')
    else process.stdout.write(`${this.config.userAgent}\n`)
  }
}
