// The engine as a library: codecs, state machines and transports, without the CLI.
export * from './tunnel/codec/frame.js'
export * from './tunnel/codec/usher.js'
export * from './tunnel/codec/tunnel.js'
export * as socks5 from './socks5/codec/messages.js'
export {Mux, Session} from './tunnel/core/mux.js'
export {Policy, parseRule} from './tunnel/core/policy.js'
export {Gate} from './tunnel/io/gate.js'
export {Portal} from './tunnel/io/portal.js'
