import {TunkitError} from '../../lib/errors.js'
import {tryNative} from '../../lib/io/native.js'
import {ListenError} from '../../lib/io/listen.js'
import {EspEngine} from '../../esp/io/engine.js'
import {NATT_PORT} from './driver.js'

/** The ESP engine on UDP `address`:4500 (IKE after NAT detection and all ESP go there). */
export async function openPlane(address: string, port = NATT_PORT): Promise<EspEngine> {
  if (!tryNative()) throw new TunkitError('TK_UNSUPPORTED', 'key-exchange needs the native addon for ESP; build it with "npm rebuild tunkit" (a C compiler and make are required)')
  try {
    return EspEngine.open({address, port})
  } catch (e) {
    const code = (e as {code?: string}).code ?? ''
    if (/EADDRINUSE|EADDRNOTAVAIL|EACCES/.test(code) || /EADDRINUSE|EADDRNOTAVAIL|EACCES/.test((e as Error).message)) throw new ListenError(`UDP ${address}:${port}`, code || (e as Error).message)
    throw e
  }
}
