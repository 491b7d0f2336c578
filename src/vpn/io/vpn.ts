/**
 * VPN mode: the gate's side (one TUN device, addresses leased by identity) and the portal's
 * pseudo network adapter (TUN or TAP). Their DATA channel is channel.ts, device set-up netconfig.ts.
 */
export {GateVpn} from './gate-vpn.js'
export {PortalVpn} from './portal-vpn.js'
