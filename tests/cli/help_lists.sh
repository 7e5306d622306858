# Sourced by the man page and completion tests: what the binary itself says it accepts, read
# from its --help, so that neither the page nor the completion can drift from it silently.
#
#   help_commands BIN [CMD...]   the subcommands `BIN CMD... --help` lists, one a line
#   help_flags BIN [CMD...]      the long flags it lists (--help included), one a line

help_commands() {
  local bin=$1
  shift
  "$bin" "$@" --help | awk '
    /^Subcommands:/ { in_list = 1; next }
    in_list && /^[^ ]/ { in_list = 0 }
    in_list && /^  [a-z]/ { print $1 }'
}

help_flags() {
  local bin=$1
  shift
  # Option lines start with spaces and a dash ("  -h,--help", "  --memory UINT:SIZE ...");
  # wrapped descriptions start with spaces and text, so they are not read.
  "$bin" "$@" --help | awk '
    /^Options:/ { in_list = 1; next }
    in_list && /^[^ ]/ { in_list = 0 }
    in_list && /^ +-/ {
      n = split($1, names, ",")
      for (i = 1; i <= n; i++) if (names[i] ~ /^--[a-z]/) { sub(/=.*/, "", names[i]); print names[i] }
    }'
}
