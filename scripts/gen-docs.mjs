// Generates man/ (roff) and completions/ (bash, zsh, fish) from oclif.manifest.json.
// `--check` compares with the committed files instead of writing, and exits 1 on any difference.
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

const check = process.argv.includes('--check')
const pkg = JSON.parse(readFileSync('package.json', 'utf8'))
const manifest = JSON.parse(readFileSync('oclif.manifest.json', 'utf8'))
const bin = pkg.oclif.bin
const commands = Object.values(manifest.commands)
  .filter((c) => c.pluginName === pkg.name)
  .sort((a, b) => a.id.localeCompare(b.id))
const words = (c) => c.id.split(':')
const text = (s) => (s ?? '').replace(/<%= config.bin %>/g, bin)
const roff = (s) => text(s).replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^([.'])/gm, '\\&$1')
const DATE = '2026-11-23' // fixed so the output is reproducible; bump with releases
const files = {}

function flagSynopsis(name, f) {
  const short = f.char ? `\\fB\\-${f.char}\\fR, ` : ''
  const shown = f.options ? f.options.join('|') : f.helpValue ? f.helpValue.replace(/[<>]/g, '').toUpperCase() : 'VALUE'
  const value = f.type === 'option' ? ` \\fI${shown}\\fR` : ''
  return `${short}\\fB\\-\\-${roff(name)}\\fR${value}`
}

function flagLines(flags) {
  const out = []
  for (const [name, f] of Object.entries(flags).filter(([, f]) => !f.hidden).sort(([a], [b]) => a.localeCompare(b))) {
    out.push('.TP', flagSynopsis(name, f))
    let desc = roff([f.summary, f.description].filter(Boolean).join(' '))
    if (f.multiple) desc += ' May be repeated.'
    if (f.default !== undefined && f.type === 'option') desc += ` Default: ${roff(String(f.default))}.`
    if (f.env) desc += ` Environment: \\fB${f.env}\\fR.`
    out.push(desc)
  }
  return out
}

const globalNames = new Set(['trace', 'trace-format', 'json', 'log-level', 'verbose', 'log-format', 'log-time', 'config'])

// Descriptions are one line per paragraph; an "Exit status:" paragraph goes to EXIT STATUS instead.
function paragraphs(s) {
  return text(s).split(/\n\s*\n/).filter((p) => !p.startsWith('Exit status: ')).flatMap((p, i) => [...(i ? ['.PP'] : []), roff(p)])
}

function manPage(c) {
  const name = `${bin}-${words(c).join('-')}`
  const args = Object.values(c.args ?? {}).map((a) => (a.required ? ` \\fI${a.name.toUpperCase()}\\fR` : ` [\\fI${a.name.toUpperCase()}\\fR]`)).join('')
  const own = Object.fromEntries(Object.entries(c.flags).filter(([n]) => !globalNames.has(n)))
  const global = Object.fromEntries(Object.entries(c.flags).filter(([n]) => globalNames.has(n)))
  const lines = [
    `.TH ${name.toUpperCase()} 1 "${DATE}" "${bin} ${pkg.version}" "User Commands"`,
    '.SH NAME', `${name} \\- ${roff(c.summary)}`,
    '.SH SYNOPSIS', `\\fB${bin} ${words(c).join(' ')}\\fR [\\fIOPTIONS\\fR]${args}`,
    '.SH DESCRIPTION', ...paragraphs(c.description ?? c.summary),
    '.SH OPTIONS', ...flagLines(own),
    '.SH GLOBAL OPTIONS', ...flagLines(global),
  ]
  if (c.examples?.length) {
    lines.push('.SH EXAMPLES')
    for (const e of c.examples) lines.push('.PP', '.nf', roff(typeof e === 'string' ? e : e.command), '.fi')
  }
  // A command that documents its own exit codes ("Exit status: ...") gets them here.
  const exitText = (c.description ?? '').match(/^Exit status: ([^\n]*)/m)
  lines.push('.SH EXIT STATUS', exitText ? roff(exitText[1]) : '0 on success or a clean stop by SIGINT/SIGTERM; 1 when the command fails at run time; 2 for bad flags or arguments.')
  lines.push('.SH SEE ALSO', `\\fB${bin}\\fR(1)`)
  files[join('man', `${name}.1`)] = lines.join('\n') + '\n'
}

function mainPage() {
  const lines = [
    `.TH ${bin.toUpperCase()} 1 "${DATE}" "${bin} ${pkg.version}" "User Commands"`,
    '.SH NAME', `${bin} \\- ${roff(pkg.description)}`,
    '.SH SYNOPSIS', `\\fB${bin}\\fR \\fICOMMAND\\fR [\\fIOPTIONS\\fR]`,
    '.SH OPTIONS', '.TP', '\\fB\\-h\\fR, \\fB\\-\\-help\\fR', 'Show help; after a command, help for that command (as does \\fBtunkit help\\fR \\fICOMMAND\\fR).',
    '.TP', '\\fB\\-v\\fR, \\fB\\-\\-version\\fR', 'Print the version (as does \\fBtunkit version\\fR).',
    '.SH COMMANDS',
  ]
  for (const c of commands) lines.push('.TP', `\\fB${words(c).join(' ')}\\fR`, roff(c.summary))
  lines.push('.SH GLOBAL OPTIONS', ...flagLines(Object.fromEntries(Object.entries(commands[0]?.flags ?? {}).filter(([n]) => globalNames.has(n)))))
  lines.push('.SH FILES', '\\fI~/.config/tunkit/pki/\\fR: the PKI written by \\fBtunkit pki init\\fR (override with \\fBTUNKIT_PKI\\fR).',
    '.br', '\\fI~/.config/tunkit/COMMAND.json\\fR (\\fB$XDG_CONFIG_HOME/tunkit/\\fR when set; \\fIpki\\-init.json\\fR for \\fBpki init\\fR): flags read when present and no \\fB\\-\\-config\\fR is given.')
  lines.push('.SH SEE ALSO', commands.map((c) => `\\fB${bin}\\-${words(c).join('\\-')}\\fR(1)`).join(', '))
  files[join('man', `${bin}.1`)] = lines.join('\n') + '\n'
}

function flagWords(c) {
  return Object.entries(c.flags).flatMap(([n, f]) => [`--${n}`, ...(f.char ? [`-${f.char}`] : [])]).sort()
}

// What a flag's value is, for the completions: its helpValue '<file>' or '<dir>' (set in the flag's
// definition, shown in help), one of its options, any text, or none (a boolean flag).
function valueKind(f) {
  if (f.type !== 'option') return null
  if (f.helpValue === '<file>' || f.helpValue === '<dir>') return f.helpValue.slice(1, -1)
  return f.options ? {options: f.options} : 'text'
}

const topWords = [...new Set(commands.map((c) => words(c)[0]))].sort()
const topics = [...new Set(commands.filter((c) => words(c).length > 1).map((c) => words(c)[0]))]
const subCommands = (t) => commands.filter((c) => words(c)[0] === t && words(c).length > 1)
const summaryOf = (w) => commands.find((c) => c.id === w)?.summary ?? pkg.oclif.topics?.[w]?.description ?? `${w} commands`
const commandPaths = [...topics, ...commands.map((c) => words(c).join(' ')), 'help'].map((w) => `"${w}"`).join('|')

function bash() {
  const argCases = commands.map((c) => {
    const byKind = new Map()
    for (const [n, f] of Object.entries(c.flags)) {
      const k = valueKind(f)
      if (!k) continue
      const key = typeof k === 'string' ? k : `=${k.options.join(' ')}`
      byKind.set(key, [...(byKind.get(key) ?? []), `--${n}`, ...(f.char ? [`-${f.char}`] : [])])
    }
    const inner = [...byKind].map(([k, fl]) => `        ${fl.join('|')}) echo "${k}" ;;`).join('\n')
    return `    "${words(c).join(' ')}") case "$2" in\n${inner}\n      esac ;;`
  }).join('\n')
  const cases = [
    `    "") opts="${[...topWords, 'help'].sort().join(' ')}" ;;`,
    `    "help") opts="${topWords.join(' ')}" ;;`,
    ...topics.map((t) => `    "${t}") opts="${subCommands(t).map((c) => words(c)[1]).join(' ')}" ;;`),
    ...commands.map((c) => `    "${words(c).join(' ')}") opts="${flagWords(c).join(' ')}" ;;`),
  ].join('\n')
  files[join('completions', `${bin}.bash`)] = `# bash completion for ${bin} (generated by scripts/gen-docs.mjs; do not edit)
# Install: source this file from ~/.bashrc, or copy it to ~/.local/share/bash-completion/completions/${bin}.

# _${bin}_arg COMMAND FLAG: what FLAG takes: "file", "dir", "=ONE TWO…" (one of), "text", or nothing.
_${bin}_arg() {
  case "$1" in
${argCases}
  esac
}

_${bin}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" cmd="" flag="" kind="" opts="" w i=1
  # The command is made of the words before the cursor that are neither flags nor flag values.
  while [ "$i" -lt "$COMP_CWORD" ]; do
    w="\${COMP_WORDS[i]}"
    if [[ $w == -* ]]; then
      # bash splits "--flag=value" into three words; otherwise a flag with a value takes the next word.
      if [ "\${COMP_WORDS[i+1]}" = "=" ]; then i=$((i + 2))
      elif [ -n "$(_${bin}_arg "$cmd" "$w")" ]; then i=$((i + 1))
      fi
    else
      case "\${cmd:+$cmd }$w" in ${commandPaths}) cmd="\${cmd:+$cmd }$w" ;; esac
    fi
    i=$((i + 1))
  done
  [ "$COMP_CWORD" -gt 1 ] && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$cur" = "=" ]; then flag="$prev" cur=""
  elif [ "$prev" = "=" ]; then flag="\${COMP_WORDS[COMP_CWORD-2]}"
  elif [[ $prev == -* ]]; then flag="$prev"
  fi
  [ -n "$flag" ] && kind="$(_${bin}_arg "$cmd" "$flag")"
  case "$kind" in
    file) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    dir) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
    =*) mapfile -t COMPREPLY < <(compgen -W "\${kind#=}" -- "$cur"); return ;;
    text) COMPREPLY=(); return ;;
  esac
  case "$cmd" in
${cases}
  esac
  mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
}
complete -F _${bin} ${bin}
`
}

// zsh: inside [description] only "]" and "\\" are special; single quotes close the shell word.
const zq = (s) => (s ?? '').replace(/\\/g, '\\\\').replace(/]/g, '\\]').replace(/'/g, `'\\''`)
// In _describe's "word:description" only the first colon separates; in a message, colons end it.
const zmsg = (s) => s.replace(/:/g, '\\:')

function zshSpec(n, f) {
  const k = valueKind(f)
  const action = !k ? '' : k === 'file' ? `:${n}:_files` : k === 'dir' ? `:${n}:_files -/` : k === 'text' ? `:${zmsg(n)}: ` : `:${n}:(${k.options.join(' ')})`
  const names = f.char ? [`-${f.char}`, `--${n}`] : [`--${n}`]
  // "=" after a long name: its value may follow in the same word ("--x=v") or the next one.
  const rep = f.multiple ? '*' : ''
  const exclude = f.char && !f.multiple ? `(${names.join(' ')})` : ''
  return names.map((name) => `'${exclude}${rep}${name}${k && name.startsWith('--') ? '=' : ''}[${zq(f.summary)}]${action}'`)
}

function zsh() {
  const sq = (x) => x.replace(/'/g, `'\\''`)
  const desc = (pairs) => pairs.map(([w, d]) => `'${w}:${sq(d)}'`).join(' ')
  const top = desc(topWords.map((w) => [w, summaryOf(w)]))
  const entries = commands.map((c) => {
    const specs = Object.entries(c.flags).flatMap(([n, f]) => zshSpec(n, f))
    const args = Object.values(c.args ?? {}).map((a, i) => `'${i + 1}:${zmsg(a.name)}: '`)
    return `    "${words(c).join(' ')}")\n      _arguments -s -S \\\n        ${[...specs, ...args].join(' \\\n        ')} ;;`
  }).join('\n')
  files[join('completions', `_${bin}`)] = `#compdef ${bin}
# zsh completion for ${bin} (generated by scripts/gen-docs.mjs; do not edit)
# Install: put this file's directory in fpath before compinit, e.g. in ~/.zshrc:
#   fpath=(/path/to/${bin}/completions $fpath); autoload -U compinit; compinit
_${bin}() {
  local -a cmds
  local w cmd="" n=2
  # Leading words that name a command ("pki init"); _arguments then sees only its flags.
  for w in \${words[2,CURRENT-1]}; do
    case "\${cmd:+$cmd }$w" in
      ${commandPaths}) cmd="\${cmd:+$cmd }$w"; n=$((n + 1)) ;;
      *) break ;;
    esac
  done
  case "$cmd" in
    "") cmds=(${top} 'help:Show help for a command.'); _describe -t commands 'command' cmds; return ;;
    "help") cmds=(${top}); _describe -t commands 'command' cmds; return ;;
${topics.map((t) => `    "${t}") cmds=(${desc(subCommands(t).map((c) => [words(c)[1], c.summary]))}); _describe -t commands 'command' cmds; return ;;`).join('\n')}
  esac
  # Hand _arguments the words from the command on, as if it were the command name.
  shift $((n - 2)) words
  (( CURRENT -= n - 2 ))
  case "$cmd" in
${entries}
  esac
}
_${bin} "$@"
`
}

function fish() {
  const lines = [`# fish completion for ${bin} (generated by scripts/gen-docs.mjs; do not edit)`, `complete -c ${bin} -f`]
  for (const t of topWords) lines.push(`complete -c ${bin} -n '__fish_use_subcommand' -a ${t} -d '${summaryOf(t).replace(/'/g, "\\'")}'`)
  for (const c of commands.filter((x) => words(x).length > 1)) {
    const [t, s] = words(c)
    lines.push(`complete -c ${bin} -n '__fish_seen_subcommand_from ${t}; and not __fish_seen_subcommand_from ${s}' -a ${s} -d '${c.summary.replace(/'/g, "\\'")}'`)
  }
  for (const c of commands) {
    const cond = words(c).map((w) => `__fish_seen_subcommand_from ${w}`).join('; and ')
    for (const [n, f] of Object.entries(c.flags)) {
      const k = valueKind(f)
      const opts = [`-l ${n}`, f.char ? `-s ${f.char}` : '', k ? '-r' : '', k === 'file' || k === 'dir' ? '-F' : '', k?.options ? `-a '${k.options.join(' ')}'` : '']
      lines.push(`complete -c ${bin} -n '${cond}' ${opts.filter(Boolean).join(' ')} -d '${(f.summary ?? '').replace(/'/g, "\\'")}'`)
    }
  }
  files[join('completions', `${bin}.fish`)] = lines.join('\n') + '\n'
}

mainPage()
commands.forEach(manPage)
bash()
zsh()
fish()

// package.json "man" lists the pages, so a global install (npm install -g) puts them on MANPATH.
const manFiles = Object.keys(files).filter((p) => p.startsWith('man/')).sort().map((p) => `./${p}`)
const manStale = JSON.stringify(pkg.man) !== JSON.stringify(manFiles)
if (manStale) {
  if (check) console.error('out of date: package.json "man" (run "npm run docs")')
  else writeFileSync('package.json', JSON.stringify({...pkg, man: manFiles}, null, 2) + '\n')
}

let stale = 0
for (const [path, content] of Object.entries(files)) {
  if (check) {
    if (!existsSync(path) || readFileSync(path, 'utf8') !== content) {
      console.error(`out of date: ${path} (run "npm run docs")`)
      stale++
    }
  } else {
    mkdirSync(path.split('/')[0], {recursive: true})
    writeFileSync(path, content)
  }
}
if (check && (stale || manStale)) process.exit(1)
if (!check) console.log(`wrote ${Object.keys(files).length} files`)
