// The layer rule: a codec is pure (no sockets, processes, files, timers, logging, tracing or the
// native addon, and nothing from core/ or io/); core/ does no I/O (the io/ side injects it).
import tseslint from 'typescript-eslint'

const IO_BUILTINS = {regex: '^(node:)?(net|dgram|tls|child_process|fs)(/.*)?$', message: 'sockets, processes and files belong to io/ modules'}
const TIMERS = ['setTimeout', 'setInterval', 'setImmediate']
const NO_TIME = 'a codec keeps no time: timers belong to core/ or io/'

export default [
  {
    files: ['src/**/*.ts'],
    languageOptions: {parser: tseslint.parser, sourceType: 'module'},
    // Registered so the sources' eslint-disable comments for its rules resolve; none is turned on.
    plugins: {'@typescript-eslint': tseslint.plugin},
    linterOptions: {reportUnusedDisableDirectives: 'off'},
  },
  {
    files: ['src/**/codec/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          IO_BUILTINS,
          {regex: '^(node:)?timers(/.*)?$', message: NO_TIME},
          {regex: '(^|/)lib/(log|trace)(/|\\.js$|$)', message: 'a codec does not log or trace: it returns values or throws CodecError'},
          {regex: '(^|/)(core|io)/', message: 'a codec uses only codecs and pure lib/ helpers (not lib/io, core/ or io/)'},
        ],
      }],
      'no-restricted-globals': ['error', ...TIMERS.map((name) => ({name, message: NO_TIME}))],
      'no-restricted-properties': ['error', ...TIMERS.map((property) => ({object: 'globalThis', property, message: NO_TIME}))],
    },
  },
  {
    files: ['src/**/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          IO_BUILTINS,
          {regex: '(^|/)io/', message: 'core/ does no I/O: not lib/io nor io/ modules (have the io/ side inject what is needed)'},
        ],
      }],
    },
  },
]
