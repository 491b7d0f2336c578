/** Edit distance (insertions, deletions, substitutions; a swap of neighbours counts one). */
export function distance(a: string, b: string): number {
  const d = Array.from({length: a.length + 1}, (_, i) => Array.from({length: b.length + 1}, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

/**
 * The candidate nearest to `typed`, ignoring case, if near enough to be what was meant: one that
 * begins with it, or at most a third of its length away (so "gat" finds "gate", and "-x" only
 * "-X": one letter off in a short word is another word).
 */
export function nearest(typed: string, candidates: Iterable<string>): string | undefined {
  const t = typed.toLowerCase()
  let best: string | undefined
  let bestD = Infinity
  for (const c of candidates) {
    const d = t.length >= 2 && c.toLowerCase().startsWith(t) ? 0.5 : distance(t, c.toLowerCase())
    if (d < bestD) [best, bestD] = [c, d]
  }
  return best !== undefined && bestD <= Math.max(0.5, Math.floor(t.length / 3)) ? best : undefined
}
