import {execFileSync} from 'node:child_process'

/**
 * The VPN devices' addresses, link state and routes, set with iproute2's `ip`. No teardown: when
 * the TUN/TAP device is closed the kernel removes it with its addresses and routes.
 */
function ip(cmd: string[]): void {
  try {
    execFileSync('ip', cmd, {stdio: ['ignore', 'ignore', 'pipe']})
  } catch (e) {
    throw new Error(`ip ${cmd.join(' ')}: ${String((e as {stderr?: Buffer}).stderr ?? e).trim()}`)
  }
}

/** The gate's device: the pool's gateway address, and up. */
export function setUpGateDevice(dev: string, gateway: string, prefix: number): void {
  ip(['addr', 'add', `${gateway}/${prefix}`, 'dev', dev])
  ip(['link', 'set', dev, 'up'])
}

/**
 * The portal's device. TUN: the leased address replaces any earlier one, and `routes` go via the
 * gateway. TAP: only up, since the host's DHCP client configures it.
 */
export function setUpPortalDevice(dev: string, mode: 'tun' | 'tap', cfg: {address: string; prefix: number; gateway: string}, routes: string[]): void {
  // Up first: a route via the gateway needs the device's connected route to exist.
  if (mode === 'tun') {
    ip(['addr', 'flush', 'dev', dev])
    ip(['addr', 'add', `${cfg.address}/${cfg.prefix}`, 'dev', dev])
  }
  ip(['link', 'set', dev, 'up'])
  if (mode === 'tun') for (const r of routes) ip(['route', 'replace', r, 'via', cfg.gateway, 'dev', dev])
}
