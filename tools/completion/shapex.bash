# bash completion for shapex(1): commands, `cache` subcommands, the flags of each, the values of
# flags with a fixed set (--transport, --sandbox, --cgroups, --color), .shape files for FILE,
# the functions a FILE declares for FUNC, directories for --dir and --store.
#
# Installed as ${datadir}/bash-completion/completions/shapex (cmake/Completion.cmake), where
# bash-completion loads it on first use; or `source tools/completion/shapex.bash`.
# It needs nothing from the bash-completion package.
#
# The flag lists below must match `shapex CMD --help`: the ctest completion
# (tests/cli/completion.sh) compares them and fails on any difference.

_shapex_commands='run call check disasm hash cache serve status stop'
_shapex_cache_commands='ls stats verify gc clear add cat'

_shapex_global_flags='--help --version --color'
_shapex_limit_flags='--help --local --transport --socket --fuel --memory --timeout --stack
  --remote-timeout'
_shapex_cache_flags='--help --dir --max-bytes'

# The long flags of a command ("cache ls" for a cache subcommand), one word each.
_shapex_flags_of() {
  case $1 in
    run) echo "$_shapex_limit_flags" ;;
    call) echo "$_shapex_limit_flags --hash --json" ;;
    check | disasm | hash) echo --help ;;
    serve)
      echo --help --socket --pool --sandbox --store --leases-per-executor \
        --max-leases-per-client --lease-wait --idle-exit --cgroups --executor-memory \
        --executor-pids --executor-cpus --daemon
      ;;
    status) echo --help --json --socket ;;
    stop) echo --help --socket ;;
    cache) echo "$_shapex_cache_flags" ;;
    'cache ls' | 'cache stats' | 'cache verify' | 'cache gc') echo --help --json ;;
    'cache clear' | 'cache add' | 'cache cat') echo --help ;;
  esac
}

# Flags that take a value in the next word (unless written --flag=value).
_shapex_takes_value() {
  case $1 in
    --color | --transport | --socket | --fuel | --memory | --timeout | --stack | \
      --remote-timeout | --hash | --pool | --sandbox | --store | --leases-per-executor | \
      --max-leases-per-client | --lease-wait | --idle-exit | --cgroups | --executor-memory | \
      --executor-pids | --executor-cpus | --dir | --max-bytes)
      return 0
      ;;
  esac
  return 1
}

# Top-level function names declared in FILE (`function f`, `@remote function f`).
_shapex_functions_in() {
  [[ -r $1 ]] || return
  sed -nE 's/^[[:space:]]*(@[A-Za-z_]+[[:space:]]+)*function[[:space:]]+([A-Za-z_][A-Za-z0-9_]*).*/\2/p' "$1"
}

_shapex_complete_files() {
  compopt -o filenames 2>/dev/null
  COMPREPLY+=($(compgen -d -- "$1") $(compgen -f -X '!*.shape' -- "$1"))
}

_shapex() {
  COMPREPLY=()
  local cur=${COMP_WORDS[COMP_CWORD]} prev=''
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  # `--flag=value`: bash splits it at '=' (COMP_WORDBREAKS), or keeps it as one word.
  if [[ $cur == '=' ]]; then
    cur=''
  elif [[ $prev == '=' ]] && ((COMP_CWORD > 1)); then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  elif [[ $cur == --*=* ]]; then
    prev=${cur%%=*}
    cur=${cur#*=}
  fi

  # Values of the flag being completed.
  case $prev in
    --color) COMPREPLY=($(compgen -W 'auto always never' -- "$cur")); return ;;
    --transport) COMPREPLY=($(compgen -W 'ring socket' -- "$cur")); return ;;
    --sandbox) COMPREPLY=($(compgen -W 'full none' -- "$cur")); return ;;
    --cgroups) COMPREPLY=($(compgen -W 'auto off' -- "$cur")); return ;;
    --dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --store)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -W none -- "$cur") $(compgen -d -- "$cur"))
      return
      ;;
    --socket) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if _shapex_takes_value "$prev"; then
    return  # a number or a hash: nothing to offer
  fi

  # The words before the cursor: the command, the cache subcommand, the positionals so far.
  local i word skip=0 cmd='' sub='' dashes=0 by_hash=0
  local -a positionals=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    if ((skip)); then
      skip=0
      continue
    fi
    if [[ $word == '=' ]]; then
      skip=1  # `--flag = value` as bash split it
      continue
    fi
    if ((dashes)); then
      positionals+=("$word")
      continue
    fi
    case $word in
      --) dashes=1 ;;
      --hash | --hash=*) by_hash=1 ;;&
      -*) [[ $word != *=* ]] && _shapex_takes_value "$word" && skip=1 ;;
      *)
        if [[ -z $cmd ]]; then
          cmd=$word
        elif [[ $cmd == cache && -z $sub ]]; then
          sub=$word
        else
          positionals+=("$word")
        fi
        ;;
    esac
  done

  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$_shapex_global_flags" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$_shapex_commands" -- "$cur"))
    fi
    return
  fi
  if [[ $cmd == cache && -z $sub ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$_shapex_cache_flags" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$_shapex_cache_commands" -- "$cur"))
    fi
    return
  fi
  if [[ $cur == -* ]] && ((!dashes)); then
    local flags
    if [[ $cmd == cache ]]; then
      # --dir and --max-bytes may follow the subcommand too.
      flags="$(_shapex_flags_of "cache $sub") --dir --max-bytes"
    else
      flags=$(_shapex_flags_of "$cmd")
    fi
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return
  fi

  # Positionals: FILE first, then FUNC for call, disasm and hash (`call --hash`: only ARGs).
  local n=${#positionals[@]}
  ((by_hash)) && return 0
  case $cmd in
    run) ((n == 0 && !dashes)) && _shapex_complete_files "$cur" ;;
    check) ((n == 0)) && _shapex_complete_files "$cur" ;;
    call | disasm | hash)
      if ((n == 0)); then
        _shapex_complete_files "$cur"
      elif ((n == 1)); then
        COMPREPLY=($(compgen -W "$(_shapex_functions_in "${positionals[0]}")" -- "$cur"))
      fi
      ;;
    cache) [[ $sub == add ]] && ((n == 0)) && _shapex_complete_files "$cur" ;;
  esac
  return 0
}

complete -F _shapex shapex
