# Sourced by the CLI tests that talk to a supervisor: a private socket and blob store in a new
# temporary directory ($dir), `supervisor_pid` (the pid `status --json` names, or nothing), and
# a cleanup on exit that stops the supervisor started there and removes $dir. A test that saw
# the supervisor's pid may keep it in $supervisor, so cleanup stops it even if `status` no
# longer answers. Needs $bin (the shapex binary).
dir=$(mktemp -d)
export SHAPEX_SOCKET=$dir/run/sock XDG_CACHE_HOME=$dir/cache
supervisor_pid() {
  "$bin" status --json 2>/dev/null | sed -n 's/.*"supervisor_pid": \([0-9]*\).*/\1/p' || true
}
private_supervisor_cleanup() {
  local p
  for p in "${supervisor:-}" "$(supervisor_pid)"; do
    if [[ -n $p ]]; then kill "$p" 2>/dev/null || true; fi
  done
  rm -rf "$dir"
}
trap private_supervisor_cleanup EXIT
