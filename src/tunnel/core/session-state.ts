/**
 * The Usher session states of seed 001, Fig. 7. "session-active" means only our reader of the
 * local socket is still running (the peer has closed its write side); "write-active" means only
 * our writer is (our local socket reached EOF). Transitions not listed leave the state unchanged.
 */
export type SessionState = 'pending' | 'active' | 'session-active' | 'write-active' | 'inactive'

export type SessionEvent =
  | 'open-ok' | 'open-failed'
  | 'local-eof' | 'remote-close'
  | 'rst' | 'read-error' | 'write-error'

export function nextState(s: SessionState, e: SessionEvent): SessionState {
  if (e === 'rst' || e === 'read-error' || e === 'write-error') return 'inactive'
  switch (s) {
    case 'pending':
      return e === 'open-ok' ? 'active' : e === 'open-failed' ? 'inactive' : s
    case 'active':
      return e === 'local-eof' ? 'write-active' : e === 'remote-close' ? 'session-active' : s
    case 'write-active':
      return e === 'remote-close' ? 'inactive' : s
    case 'session-active':
      return e === 'local-eof' ? 'inactive' : s
    case 'inactive':
      return s
  }
}
