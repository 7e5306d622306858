#!/usr/bin/env bash
# The life cycle of an auto-started supervisor (issue 11, "Daemon hygiene" and "One supervisor per
# socket path"), with real processes:
#   a. a call that has to start the supervisor answers 42 and returns at once, even as
#      `x=$(shapex call ... 3>&1)` (the daemon must not keep the caller's pipe open);
#   b. the daemon holds none of its starter's descriptors: 0 and 1 are /dev/null, 2 is its log,
#      the rest are its own sockets, anon inodes, lock and log; /proc/PID/comm is "shapex"; it
#      leads its own session (setsid);
#   c. it logs to $XDG_STATE_HOME/shapex/supervisor.log; SIGHUP reopens the log (a rotated log
#      is created again) and the same supervisor keeps serving;
#   d. `shapex stop` stops it and waits (exit 0, no output, pid and socket gone, no process left
#      serving the socket); a second `shapex stop` prints nothing and exits 0;
#   e. with SHAPEX_IDLE_EXIT=1 the supervisor a call starts exits by itself;
#   f. 20 calls started at once with no supervisor: all print 42, none writes to stderr, exactly
#      one supervisor serves the socket afterwards;
#   g. a second `shapex serve` on the same socket fails with exit 1 and "a supervisor already
#      serves PATH"; the first keeps its socket and answers;
#   h. `shapex run` starts a supervisor too.
# Every step has a hang deadline: a hang fails the test, it never leaves it stuck.
# Usage: lifecycle.sh SHAPEX_BIN
set -euo pipefail
bin=$(realpath "$1")
add=$(cd "$(dirname "$0")/../../examples" && pwd)/add.shape
dir=$(realpath "$(mktemp -d)")
export SHAPEX_SOCKET=$dir/run/sock XDG_STATE_HOME=$dir/state XDG_CACHE_HOME=$dir/cache
unset SHAPEX_IDLE_EXIT SHAPEX_BIN
log=$XDG_STATE_HOME/shapex/supervisor.log
hang=10          # seconds any one command may take
hang_many=30     # for each of 20 concurrent calls on 2 cores
background=()    # pids of calls started with &

# Processes whose command line mentions our socket (the supervisor, its zygote and executors,
# and any `shapex serve --socket` this script starts).
socket_processes() {
  local p args
  for p in /proc/[0-9]*; do
    { mapfile -d '' args <"$p/cmdline"; } 2>/dev/null || continue
    if [[ "${args[*]}" == *"$SHAPEX_SOCKET"* ]]; then echo "${p#/proc/}"; fi
  done
}

cleanup() {
  set +e
  exec 7>&- 8>&-
  timeout "$hang" "$bin" stop >/dev/null 2>&1
  local p
  for p in "${background[@]}" $(socket_processes); do kill -9 "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  if [[ -f $log ]]; then
    echo "--- supervisor log ($log):" >&2
    tail -n 30 "$log" >&2
  fi
  exit 1
}

now_us() { local t=$EPOCHREALTIME; echo "${t//[^0-9]/}"; }  # any locale's decimal point

# Fields 3.. of /proc/PID/stat (state, ppid, pgrp, session, ...), after the command name.
stat_fields() {
  local s
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
  echo "${s##*) }"
}

# PID exists and is not a zombie.
alive() {
  local s f
  s=$(stat_fields "$1") || return 1
  read -r -a f <<<"$s"
  [[ ${f[0]} != Z ]]
}

field() {  # field INDEX PID: INDEX 0 = state, 1 = ppid, 3 = session
  local s f
  s=$(stat_fields "$2") || return 1
  read -r -a f <<<"$s"
  echo "${f[$1]}"
}

# Supervisors of our socket: `shapex serve` processes naming it whose parent is not one (the
# zygote and the executors share the supervisor's command line).
supervisors() {
  local -A serving=()
  local p pp args
  for p in $(socket_processes); do
    { mapfile -d '' args <"/proc/$p/cmdline"; } 2>/dev/null || continue
    if [[ " ${args[*]} " == *" serve "* ]]; then serving[$p]=1; fi
  done
  for p in "${!serving[@]}"; do
    pp=$(field 1 "$p") || continue
    if [[ -z ${serving[$pp]:-} ]]; then echo "$p"; fi
  done
}

# The supervisor's pid by `shapex status --json` (the top-level "pid", outside "executors"), or
# nothing when none answers.
status_pid() {
  local json
  json=$(timeout "$hang" "$bin" status --json 2>/dev/null | tr -d '\n') || return 0
  json=$(sed 's/"executors": *\[[^]]*\]//' <<<"$json")
  sed -n 's/.*"\(supervisor_\)\{0,1\}pid": *\([0-9][0-9]*\).*/\2/p' <<<"$json"
}

# PID listens on $SHAPEX_SOCKET: the listening socket bound to the path (/proc/net/unix: flags
# 00010000) is one of PID's descriptors. Rules out a split brain (another process owning the path).
owns_socket() {
  local pid=$1 inode entry
  inode=$(awk -v path="$SHAPEX_SOCKET" '$8 == path && $4 == "00010000" { print $7; exit }' /proc/net/unix)
  [[ -n $inode ]] || return 1
  for entry in "/proc/$pid/fd/"*; do
    if [[ $(readlink "$entry" 2>/dev/null) == "socket:[$inode]" ]]; then return 0; fi
  done
  return 1
}

# capture ERRFILE SECONDS CMD...: runs CMD with stdout and descriptor 3 on one pipe, as
# `x=$(CMD 3>&1)` does, and stderr to ERRFILE; sets $out (what it printed, without the last
# newline), $rc (its exit code) and $elapsed_ms (until the pipe closed). The pipe must close
# within SECONDS: if a process CMD started (the supervisor) kept a copy, `x=$(...)` would never
# return.
capture() {
  local errfile=$1 seconds=$2 fd line status start deadline left
  shift 2
  start=$(now_us)
  deadline=$((start + seconds * 1000000))
  exec {fd}< <("$@" 3>&1 2>"$errfile"; echo "__rc=$?")
  out=
  while :; do
    left=$((deadline - $(now_us)))
    if ((left <= 0)); then
      exec {fd}<&-
      fail "'$*': its stdout stayed open ${seconds} s (a process it started kept it); so far: '$out'; stderr: $(cat "$errfile")"
    fi
    if IFS= read -r -t "$((left / 1000000)).$(printf %06d $((left % 1000000)))" -u "$fd" line; then
      out+=$line$'\n'
      continue
    else
      status=$?
    fi
    if ((status > 128)); then continue; fi  # timed out: the deadline check above fails
    out+=$line  # EOF (a last line without newline, if any)
    break
  done
  exec {fd}<&-
  elapsed_ms=$((($(now_us) - start) / 1000))
  [[ $out == *__rc=* ]] || fail "'$*' was killed before it finished; printed '$out'; stderr: $(cat "$errfile")"
  rc=${out##*__rc=}
  rc=${rc%$'\n'}
  out=${out%__rc=*}
  out=${out%$'\n'}
}

# A call through whatever supervisor serves (or is started): prints 42 and exits 0.
expect_call_42() {
  local what=$1
  capture "$dir/call.err" "$hang" timeout "$hang" "$bin" call "$add" add 10 32
  [[ $rc == 0 && $out == 42 ]] || fail "$what: call exited $rc, printed '$out'; stderr: $(cat "$dir/call.err")"
  [[ ! -s $dir/call.err ]] || fail "$what: call wrote to stderr: $(cat "$dir/call.err")"
}

# Waits up to SECONDS for `supervisors` to list exactly N processes.
expect_supervisors() {
  local n=$1 seconds=$2 what=$3 found i
  for ((i = 0; i < seconds * 20; ++i)); do
    found=$(supervisors | wc -l)
    if ((found == n)); then return 0; fi
    sleep 0.05
  done
  fail "$what: $found supervisors serve $SHAPEX_SOCKET, expected $n: $(supervisors | tr '\n' ' ')"
}

script_start=$(now_us)
[[ -z $(socket_processes) ]] || fail "a process already serves $SHAPEX_SOCKET"

# Descriptors the test shell holds when the supervisor is started: a pipe and a file. Every
# starter (`shapex call`, its `shapex serve --daemon`) inherits them; the daemon must close them.
exec 7> >(cat >/dev/null)
exec 8>"$dir/marker"
pipe7=$(readlink "/proc/$$/fd/7")
[[ $pipe7 == pipe:* ]] || fail "descriptor 7 of the test shell is '$pipe7', not a pipe"

# --- a. x=$(shapex call ... 3>&1) starts the supervisor and returns at once.
capture "$dir/a.err" "$hang" timeout "$hang" "$bin" call "$add" add 10 32
echo "a: the call that started the supervisor took $elapsed_ms ms (until its stdout closed)"
[[ $rc == 0 && $out == 42 ]] || fail "a: first call exited $rc, printed '$out'; stderr: $(cat "$dir/a.err")"
[[ ! -s $dir/a.err ]] || fail "a: first call wrote to stderr: $(cat "$dir/a.err")"
pid=$(status_pid)
[[ -n $pid ]] || fail "a: no supervisor answers status after the first call"
alive "$pid" || fail "a: status names pid $pid, which is not running"
expect_supervisors 1 5 "a"
[[ $(supervisors) == "$pid" ]] || fail "a: status names $pid, the process serving is $(supervisors)"
owns_socket "$pid" || fail "a: supervisor $pid does not hold the socket bound to $SHAPEX_SOCKET"

# --- b. Detached cleanly.
[[ -r /proc/$pid/fd ]] || fail "b: cannot read /proc/$pid/fd (is the supervisor not dumpable?)"
for entry in "/proc/$pid/fd/"*; do
  n=${entry##*/}
  target=$(readlink "$entry") || continue  # closed meanwhile
  case $n in
    0 | 1) [[ $target == /dev/null ]] || fail "b: descriptor $n of the supervisor is '$target', not /dev/null" ;;
    2) [[ $target == "$log" ]] || fail "b: stderr of the supervisor is '$target', not $log" ;;
    *)
      case $target in
        "$pipe7") fail "b: descriptor $n of the supervisor is the starter's pipe ($target)" ;;
        "$dir/marker") fail "b: descriptor $n of the supervisor is the starter's file ($target)" ;;
        socket:* | anon_inode:* | pipe:* | /memfd:* | "$SHAPEX_SOCKET.lock" | "$log" | /dev/null) ;;
        "$XDG_CACHE_HOME"/*) ;;  # its blob store
        *) fail "b: the supervisor holds descriptor $n -> '$target', which it did not open itself" ;;
      esac
      ;;
  esac
done
for n in 0 1 2; do
  [[ -e /proc/$pid/fd/$n ]] || fail "b: the supervisor has no descriptor $n"
done
comm=$(cat "/proc/$pid/comm")
[[ $comm == shapex ]] || fail "b: /proc/$pid/comm is '$comm', not 'shapex'"
session=$(field 3 "$pid")
[[ $session == "$pid" ]] || fail "b: the supervisor $pid is in session $session (no setsid)"
echo "b: supervisor $pid: descriptors clean, comm '$comm', own session"

# --- c. Its log, and SIGHUP.
[[ -f $log ]] || fail "c: no log file $log ($(ls -la "$XDG_STATE_HOME/shapex" 2>&1))"
inode=$(stat -c %i "$SHAPEX_SOCKET")
mv "$log" "$log.1"  # rotated: SIGHUP must open the path again
kill -HUP "$pid"
for ((i = 0; i < 100; ++i)); do
  if [[ -f $log && $(readlink "/proc/$pid/fd/2" 2>/dev/null) == "$log" ]]; then break; fi
  sleep 0.05
done
alive "$pid" || fail "c: the supervisor died of SIGHUP"
[[ -f $log ]] || fail "c: SIGHUP did not reopen $log after it was moved away"
[[ $(readlink "/proc/$pid/fd/2") == "$log" ]] || fail "c: stderr after SIGHUP is $(readlink "/proc/$pid/fd/2")"
expect_call_42 "c (after SIGHUP)"
[[ $(status_pid) == "$pid" ]] || fail "c: after SIGHUP status names '$(status_pid)', not $pid"
[[ $(stat -c %i "$SHAPEX_SOCKET") == "$inode" ]] || fail "c: the socket was replaced after SIGHUP"
echo "c: log $log reopened on SIGHUP, supervisor $pid still serves"

# --- d. shapex stop, twice.
stop_out=$(timeout "$hang" "$bin" stop 2>&1) || fail "d: shapex stop exited $?: $stop_out"
[[ -z $stop_out ]] || fail "d: shapex stop printed '$stop_out'"
! alive "$pid" || fail "d: supervisor $pid still runs after shapex stop returned"
[[ ! -e $SHAPEX_SOCKET ]] || fail "d: the socket $SHAPEX_SOCKET is left after stop"
for ((i = 0; i < 100; ++i)); do
  if [[ -z $(socket_processes) ]]; then break; fi
  sleep 0.05
done
[[ -z $(socket_processes) ]] || fail "d: processes still serve after stop: $(socket_processes | tr '\n' ' ')"
stop_out=$(timeout "$hang" "$bin" stop 2>&1) || fail "d: a second shapex stop exited $?: $stop_out"
[[ -z $stop_out ]] || fail "d: a second shapex stop printed '$stop_out'"
[[ -z $(socket_processes) && ! -e $SHAPEX_SOCKET ]] || fail "d: shapex stop started something"
echo "d: shapex stop stopped $pid; a second stop was silent"

# --- e. Idle exit (SHAPEX_IDLE_EXIT reaches the supervisor a client starts).
capture "$dir/e.err" "$hang" env SHAPEX_IDLE_EXIT=1 timeout "$hang" "$bin" call "$add" add 10 32
[[ $rc == 0 && $out == 42 ]] || fail "e: call exited $rc, printed '$out'; stderr: $(cat "$dir/e.err")"
pid=$(status_pid)
[[ -n $pid ]] || fail "e: no supervisor answered status right after the call"
start=$(now_us)
for ((i = 0; i < 200; ++i)); do
  if ! alive "$pid"; then break; fi
  sleep 0.05
done
! alive "$pid" || fail "e: the supervisor $pid (SHAPEX_IDLE_EXIT=1) still runs after 10 s"
echo "e: the idle supervisor exited $((($(now_us) - start) / 1000)) ms after the last client"
[[ ! -e $SHAPEX_SOCKET ]] || fail "e: the idle supervisor left its socket"
for ((i = 0; i < 100; ++i)); do
  if [[ -z $(socket_processes) ]]; then break; fi
  sleep 0.05
done
[[ -z $(socket_processes) ]] || fail "e: processes left after idle exit: $(socket_processes | tr '\n' ' ')"

# --- f. 20 clients at once, no supervisor.
[[ -z $(socket_processes) && ! -e $SHAPEX_SOCKET ]] || fail "f: a supervisor runs already"
mkdir "$dir/many"
start=$(now_us)
for i in $(seq 20); do
  timeout "$hang_many" "$bin" call "$add" add 10 32 >"$dir/many/$i.out" 2>"$dir/many/$i.err" &
  background+=($!)
done
for i in $(seq 20); do
  if wait "${background[i - 1]}"; then code=0; else code=$?; fi
  echo "$code" >"$dir/many/$i.rc"
done
background=()
echo "f: 20 concurrent calls took $((($(now_us) - start) / 1000)) ms"
for i in $(seq 20); do
  [[ $(cat "$dir/many/$i.rc") == 0 && $(cat "$dir/many/$i.out") == 42 ]] ||
    fail "f: call $i exited $(cat "$dir/many/$i.rc"), printed '$(cat "$dir/many/$i.out")': $(cat "$dir/many/$i.err")"
  [[ ! -s $dir/many/$i.err ]] || fail "f: call $i wrote to stderr: $(cat "$dir/many/$i.err")"
done
expect_supervisors 1 5 "f"
pid=$(supervisors)
[[ $(status_pid) == "$pid" ]] || fail "f: status names '$(status_pid)', the one serving is $pid"
owns_socket "$pid" || fail "f: supervisor $pid does not hold the socket bound to $SHAPEX_SOCKET"

# --- g. A second `shapex serve` on the same socket.
inode=$(stat -c %i "$SHAPEX_SOCKET")
if timeout "$hang" "$bin" serve --socket "$SHAPEX_SOCKET" --store none >"$dir/g.out" 2>"$dir/g.err"; then
  code=0
else
  code=$?
fi
[[ $code == 1 ]] || fail "g: a second shapex serve exited $code (124: it ran): $(cat "$dir/g.err")"
grep -qF "error[SandboxError]: a supervisor already serves $SHAPEX_SOCKET" "$dir/g.err" ||
  fail "g: a second shapex serve said: $(cat "$dir/g.err")"
if timeout "$hang" "$bin" serve --daemon --socket "$SHAPEX_SOCKET" >"$dir/g.out" 2>"$dir/g.err"; then
  fail "g: a second shapex serve --daemon exited 0"
fi
alive "$pid" || fail "g: the first supervisor died"
[[ $(stat -c %i "$SHAPEX_SOCKET") == "$inode" ]] || fail "g: the socket path is no longer the first supervisor's"
expect_call_42 "g (after a second serve)"
[[ $(status_pid) == "$pid" ]] || fail "g: status names '$(status_pid)', not $pid"
owns_socket "$pid" || fail "g: supervisor $pid no longer holds the socket bound to $SHAPEX_SOCKET"
expect_supervisors 1 5 "g"
echo "g: a second serve exited 1; supervisor $pid kept serving"

# --- h. `shapex run` starts a supervisor as well.
stop_out=$(timeout "$hang" "$bin" stop 2>&1) || fail "h: shapex stop exited $?: $stop_out"
! alive "$pid" || fail "h: supervisor $pid still runs after shapex stop returned"
capture "$dir/h.err" "$hang" timeout "$hang" "$bin" run "$add"
[[ $rc == 0 && $out == 42 ]] || fail "h: shapex run exited $rc, printed '$out'; stderr: $(cat "$dir/h.err")"
[[ ! -s $dir/h.err ]] || fail "h: shapex run wrote to stderr: $(cat "$dir/h.err")"
pid=$(status_pid)
[[ -n $pid ]] && alive "$pid" || fail "h: shapex run left no supervisor"
expect_supervisors 1 5 "h"
stop_out=$(timeout "$hang" "$bin" stop 2>&1) || fail "h: shapex stop exited $?: $stop_out"
! alive "$pid" || fail "h: supervisor $pid still runs after shapex stop returned"
echo "h: shapex run started supervisor $pid; stopped"

echo "lifecycle: all steps passed in $((($(now_us) - script_start) / 1000)) ms"
