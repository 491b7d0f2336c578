// The engine as a library: codecs, state machines and transports, without the CLI.
export * from './codec/frame.js'
export * from './codec/usher.js'
export * from './codec/tunnel.js'
export * as socks5 from './codec/socks5.js'
export {Mux, Session} from './core/mux.js'
export {Policy, parseRule} from './core/policy.js'
export {Gate} from './transport/gate.js'
export {Portal} from './transport/portal.js'
