import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {configFileExists, filesRead, readConfigFile, serveFiles} from '../../../src/lib/io/config-files.js'
import {loadTls} from '../../../src/lib/io/tls-config.js'
import {makePki} from '../../helpers/tunnel.js'
import {tmpDir} from '../../helpers/procs.js'

test('a gate worker reads what its primary read, not the disk: texts, absences, and nothing else', async () => {
  const t = tmpDir('cfgfiles')
  const pki = await makePki('cfgfiles-pki')
  try {
    const policy = join(t.dir, 'policy')
    const gone = join(t.dir, 'gate.json')
    writeFileSync(policy, 'alice=198.18.0.0/15\n')
    // The primary: reads from the disk, and keeps what it read.
    assert.is(readConfigFile(policy), 'alice=198.18.0.0/15\n')
    assert.not.ok(configFileExists(gone))
    const files = {cert: join(pki.dir, 'gate.crt'), key: join(pki.dir, 'gate.key'), ca: join(pki.dir, 'ca.crt'), crl: {file: join(pki.dir, 'crl.pem'), optional: true}}
    const loaded = loadTls(files, 'gate')
    const set = filesRead()
    assert.is(set[policy], 'alice=198.18.0.0/15\n')
    assert.is(set[gone], null)
    assert.is(set[files.key], loaded.key)

    // The disk changes; a worker served the set sees the set.
    writeFileSync(policy, 'bob=198.18.0.0/15\n')
    writeFileSync(gone, '{"workers": 1}')
    writeFileSync(files.key, 'garbage')
    serveFiles(set)
    assert.is(readConfigFile(policy), 'alice=198.18.0.0/15\n')
    assert.not.ok(configFileExists(gone))
    assert.throws(() => readConfigFile(gone), (e: Error & {code?: string}) => e.code === 'ENOENT')
    assert.equal(loadTls(files, 'gate'), loaded)
    // A path the primary never read is a bug: it says so instead of reading the disk.
    assert.throws(() => readConfigFile(join(t.dir, 'other')), /not among the configuration files the gate primary loaded/)
  } finally {
    serveFiles(undefined)
    pki.cleanup()
    t.cleanup()
  }
  assert.ok(configFileExists(join(pki.dir, '..')), 'served no more: the disk again')
})

test.run()
