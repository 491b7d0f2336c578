import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {crc32} from '../../src/lib/crc32.js'

test('CRC-32 matches zlib ("123456789" → cbf43926)', () => {
  assert.is(crc32(Buffer.from('123456789')).toString(16), 'cbf43926')
})

test.run()
