/**
 * Every protocol registers how its messages render for --trace: a kind name and a renderer
 * producing the message's fields (its `type`, then what is worth a line). The Tracer adds what
 * every record has — time, direction, `peer` (an address, IPv6 in brackets), `identity` when
 * known, and `len`: the bytes of the message on the wire including its own header (a tunnel
 * frame or Usher record with its 8-byte header, a whole STUN message, a whole Ethernet frame).
 * Text and JSON lines come from the same record.
 */
export type TraceValue = string | number | boolean | string[]
export type TraceFields = Record<string, TraceValue>
/** What a renderer returns: the message type name first, then its own fields (never len/peer). */
export type Rendered = {type: string} & TraceFields

export interface TraceKind<M> {
  readonly name: string
  render(m: M): Rendered
}

const kinds = new Map<string, TraceKind<never>>()

/** Registers a protocol's renderer once, under a unique name; returns the handle engines use. */
export function registerTrace<M>(name: string, render: (m: M) => Rendered): TraceKind<M> {
  if (kinds.has(name)) throw new Error(`trace kind "${name}" registered twice`)
  const kind: TraceKind<M> = {name, render}
  kinds.set(name, kind as TraceKind<never>)
  return kind
}

export function traceKind(name: string): TraceKind<unknown> | undefined {
  return kinds.get(name) as TraceKind<unknown> | undefined
}

export function traceKinds(): string[] {
  return [...kinds.keys()]
}
