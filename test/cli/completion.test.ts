import {execFile} from 'node:child_process'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {promisify} from 'node:util'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {tmpDir} from '../helpers/procs.js'
import {lacking, unless} from '../helpers/requires.js'

const run = promisify(execFile)
const COMPLETIONS = resolve('completions')

// Command lines and the words completion must offer for the last word (a subset, in any order).
// Files are completed in a scratch directory holding gate.crt, gate.key and pki/.
const CASES: [string, string[], string[]?][] = [
  ['tunkit ', ['gate', 'portal', 'relay', 'pki', 'nat-discover', 'version', 'help']],
  ['tunkit pki ', ['init', 'issue']],
  ['tunkit g', ['gate']],
  // Flags after a flag with a value (the issue's case), and after --flag=value.
  ['tunkit portal --gate 127.0.0.1:4433 --s', ['--socks', '--socks-user', '--skip-unbindable'], ['127.0.0.1:4433']],
  ['tunkit portal -L 8022:intranet.example:22 --gate=127.0.0.1:4433 --tr', ['--trace', '--trace-format']],
  ['tunkit pki issue bob --d', ['--days', '--dir']],
  // An enumeration offers its values, not flags.
  ['tunkit portal --log-level ', ['error', 'warn', 'info', 'debug'], ['--trace']],
  ['tunkit relay --balance r', ['round-robin'], ['least-connections']],
  // File flags complete files, directory flags directories.
  ['tunkit gate --cert gate.', ['gate.crt', 'gate.key']],
  ['tunkit portal --config g', ['gate.crt', 'gate.key']],
  ['tunkit gate --pki-dir p', ['pki']],
]

function check(line: string, got: string[], want: string[], notWant: string[] = []): void {
  for (const w of want) assert.ok(got.includes(w), `"${line}" offers ${w}; got: ${got.join(' ')}`)
  for (const w of notWant) assert.not.ok(got.includes(w), `"${line}" does not offer ${w}; got: ${got.join(' ')}`)
}

function scratch(): {dir: string; cleanup: () => void} {
  const s = tmpDir('compl')
  writeFileSync(join(s.dir, 'gate.crt'), '')
  writeFileSync(join(s.dir, 'gate.key'), '')
  mkdirSync(join(s.dir, 'pki'))
  return s
}

const bash = suite('completion: bash')

bash('bash completes commands, flags after valued flags, enumeration values and files', async () => {
  const s = scratch()
  try {
    // COMP_WORDS split as bash splits them: COMP_WORDBREAKS makes "=" and ":" words of their own.
    const script = [`source ${COMPLETIONS}/tunkit.bash`,
      'c() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _tunkit; printf "%s\\n" "@@ $*" "${COMPREPLY[@]}"; }',
      ...CASES.map(([line]) => `c ${line.split(/(?<=[=:])|(?=[=:])| /).map((w) => `'${w}'`).join(' ')}`)].join('\n')
    const {stdout} = await run('bash', ['--norc', '-c', script], {cwd: s.dir, timeout: 10000})
    const replies = stdout.split('@@ ').slice(1).map((b) => b.split('\n').slice(1).filter(Boolean))
    assert.is(replies.length, CASES.length)
    CASES.forEach(([line, want, notWant], i) => check(line, replies[i], want, notWant))
  } finally {
    s.cleanup()
  }
})

const zsh = suite('completion: zsh')

/**
 * Real zsh: an interactive shell in a zsh/zpty pseudo-terminal runs compinit with our fpath, and
 * compadd is wrapped to record the matches it is given (compadd -O) under the line being
 * completed (calls that only fill an array, -O/-A/-D as _arguments makes them, pass straight
 * through: adding their matches too would change the list); each line is typed after a ^U that clears the one before, then a Tab. The terminal's output is kept
 * too, for the descriptions zsh lists (read as it comes, so that the terminal never fills up).
 */
async function zshComplete(dir: string, lines: string[]): Promise<{matches: Map<string, string[]>; screen: string}> {
  const log = join(dir, 'compadd.log')
  const zq = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`
  const script = `zmodload zsh/zpty
zpty -b z zsh -f -i
zpty -w z ${zq(`stty columns 250; PS1='> '; fpath=(${COMPLETIONS} $fpath); autoload -U compinit; compinit -u -D; zstyle ':completion:*' list-prompt ''; LISTMAX=100000`)}
zpty -w z ${zq(`compadd() { (( \${@[(I)-[OAD]*]} )) && { builtin compadd "$@"; return }; local -a m; builtin compadd -O m "$@"; print -rl -- "@@ $BUFFER" $m >> ${log}; builtin compadd "$@" }`)}
screen=
for line in ${lines.map(zq).join(' ')}; do
  zpty -w -n z $'\\C-u'"$line"$'\\t'
  # zle skips completion with keys pending: the next line waits until this one was completed.
  for i in {1..100}; do grep -qxF "@@ $line" ${log} 2>/dev/null && break; sleep 0.1; done
  sleep 0.3
  while zpty -rt z chunk; do screen+=$chunk; done
done
for i in {1..10}; do sleep 0.1; while zpty -rt z chunk; do screen+=$chunk; done; done
zpty -d z
print -r -- "$screen"
`
  const {stdout} = await run('zsh', ['-f', '-c', script], {cwd: dir, timeout: 10000 + lines.length * 2000})
  const matches = new Map<string, string[]>()
  let key = ''
  for (const l of readFileSync(log, 'utf8').split('\n')) {
    if (l.startsWith('@@ ')) key = l.slice(3)
    else if (l) matches.set(key, [...(matches.get(key) ?? []), l])
  }
  return {matches, screen: stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')}
}

unless(zsh, lacking(['zsh']))('zsh completes commands, flags after valued flags, enumeration values and files; descriptions keep their colons', async () => {
  const s = scratch()
  try {
    const {matches, screen} = await zshComplete(s.dir, [...CASES.map(([line]) => line), 'tunkit gate --c'])
    for (const [line, want, notWant] of CASES) check(line, matches.get(line) ?? [], want, notWant)
    // Descriptions as written, colons included.
    assert.match(screen, /--ca +-- CA certificate that signs the peer \(PEM\)\. Default: from the PKI directory\./)
    assert.match(screen, /--connect-timeout +-- Time to wait for an outbound connection\./)
  } finally {
    s.cleanup()
  }
})

bash.run()
zsh.run()
