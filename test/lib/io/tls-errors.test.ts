import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {once} from 'node:events'
import {createServer as netServer, type AddressInfo} from 'node:net'
import {connect, createSecureContext, createServer, type TLSSocket} from 'node:tls'
import {errorCode, isRetryable} from '../../../src/lib/errors.js'
import {dialTcp} from '../../../src/lib/io/connect.js'
import {createCa, issue} from '../../../src/pki/pki.js'

// Real handshakes on loopback: the codes Node and OpenSSL really raise land on the right side of
// the retry-or-fail line (the table is only as good as the codes it was written against).

type Pair = {certPem: string; keyPem: string}
const pki = async (): Promise<{ca: string; server: Pair; client: Pair}> => {
  const ca = await createCa('tk test CA', 1)
  return {ca: ca.certPem, server: await issue(ca, {cn: 'gate', role: 'server', sans: ['127.0.0.1']}), client: await issue(ca, {cn: 'alice', role: 'client'})}
}

/** Handshake (and one read, where TLS 1.3 reports the server's verdict on our certificate). */
async function handshake(server: {ca: string; cert: Pair}, client: {ca: string; cert?: Pair}): Promise<{client?: Error}> {
  const out: {client?: Error} = {}
  const srv = createServer({cert: server.cert.certPem, key: server.cert.keyPem, ca: server.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3'}, (s) => s.end('hi'))
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const c: TLSSocket = connect({host: '127.0.0.1', port: (srv.address() as AddressInfo).port, ca: client.ca, cert: client.cert?.certPem, key: client.cert?.keyPem, minVersion: 'TLSv1.3'})
  c.on('data', () => {})
  const [err] = await Promise.race([once(c, 'error'), once(c, 'close').then(() => [undefined])]) as [Error | undefined]
  out.client = err
  c.destroy()
  srv.close()
  return out
}

test('a gate certificate from another CA: the portal gives up (TK_TLS_UNKNOWN_CA)', async () => {
  const [mine, theirs] = [await pki(), await pki()]
  const r = await handshake({ca: mine.ca, cert: mine.server}, {ca: theirs.ca, cert: theirs.client})
  assert.ok(r.client, 'the client failed')
  assert.is(errorCode(r.client), 'TK_TLS_UNKNOWN_CA', String((r.client as {code?: string}).code))
  assert.not.ok(isRetryable(r.client))
})

test('a client certificate from another CA: the gate\'s own verify result is fatal (TK_TLS_UNKNOWN_CA)', async () => {
  // The gate checks the chain itself after the handshake (see gate.ts startTls) and answers CLOSE.
  const [mine, theirs] = [await pki(), await pki()]
  const srv = createServer({cert: mine.server.certPem, key: mine.server.keyPem, ca: mine.ca, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3'})
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const c = connect({host: '127.0.0.1', port: (srv.address() as AddressInfo).port, ca: mine.ca, cert: theirs.client.certPem, key: theirs.client.keyPem})
  c.on('error', () => {})
  const [s] = await once(srv, 'secureConnection') as [TLSSocket]
  const verify = (s as unknown as {ssl: {verifyError(): Error | null}}).ssl.verifyError()
  c.destroy()
  s.destroy()
  srv.close()
  assert.ok(verify)
  assert.is(errorCode(verify), 'TK_TLS_UNKNOWN_CA', String((verify as {code?: string}).code))
  assert.not.ok(isRetryable(verify))
})

test('no client certificate: fatal (TK_TLS_CERT_REQUIRED)', async () => {
  const mine = await pki()
  const r = await handshake({ca: mine.ca, cert: mine.server}, {ca: mine.ca})
  assert.ok(r.client, 'the client failed')
  assert.is(errorCode(r.client), 'TK_TLS_CERT_REQUIRED', String((r.client as {code?: string}).code))
  assert.not.ok(isRetryable(r.client))
})

test('a key that is not the certificate\'s, as OpenSSL finds it making a TLS context: fatal (TK_TLS_CONFIG)', async () => {
  const [mine, theirs] = [await pki(), await pki()]
  let err: unknown
  try {
    createSecureContext({cert: mine.server.certPem, key: theirs.server.keyPem})
  } catch (e) {
    err = e
  }
  assert.ok(err, 'OpenSSL refused the pair')
  assert.is(errorCode(err), 'TK_TLS_CONFIG', String((err as {code?: string}).code))
  assert.not.ok(isRetryable(err))
})

test('a refused connection is retried (TK_CONNECT_REFUSED)', async () => {
  const srv = netServer().listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as AddressInfo).port
  await new Promise((r) => srv.close(r))
  const e = await dialTcp('127.0.0.1', port, 5000).then(() => null, (x: Error) => x)
  assert.ok(e)
  assert.is(errorCode(e), 'TK_CONNECT_REFUSED')
  assert.ok(isRetryable(e))
})

test.run()
