# shellcheck shell=bash
# Shared helpers for Snowtap's dnstap peer scripts (sourced, not executed):
# destination parsing, the dnsperf query file, waiting for DNS servers and
# receivers, stopping processes by PID, reference receivers and counts.
# Everything here talks to 127.0.0.0/8 and ::1 only.

PEERS_DIR=${PEERS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
export ZONE_SRC="$PEERS_DIR/conf/tap.test.zone"
TAP_TYPE="protobuf:dnstap.Dnstap"
# The daemons live in /usr/sbin, which a non-root user's PATH may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin:/sbin" ;; esac
export PATH

log() { printf '[peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

# Refuse anything that is not loopback (defence in depth for user input).
check_loopback() { # host
  case "$1" in
    127.*|::1|localhost) return 0 ;;
    *) die "refusing non-loopback address '$1'" ;;
  esac
}

# parse_dest "unix:/path" | "tcp:127.0.0.1:6000" | "file:/path"
# sets DEST_KIND, DEST_PATH, DEST_HOST, DEST_PORT
parse_dest() {
  DEST_KIND=${1%%:*}; DEST_PATH=; DEST_HOST=; DEST_PORT=
  case "$1" in
    unix:/*) DEST_PATH=${1#unix:} ;;
    file:/*) DEST_PATH=${1#file:} ;;
    tcp:*)
      local hp=${1#tcp:}
      DEST_HOST=${hp%:*}; DEST_PORT=${hp##*:}
      DEST_HOST=${DEST_HOST#[}; DEST_HOST=${DEST_HOST%]}
      [[ $DEST_PORT =~ ^[0-9]+$ ]] || die "bad tcp destination '$1'"
      check_loopback "$DEST_HOST" ;;
    *) die "destination must be unix:/abs/path, tcp:127.0.0.1:PORT or file:/abs/path (got '$1')" ;;
  esac
}

# Deterministic query file for dnsperf: mostly unique names under the
# wildcard w.tap.test (so caches do not hide upstream traffic), plus a mix
# of fixed names, qtypes, a CNAME, a large TXT and NXDOMAINs. Written to a
# temporary name and renamed, so parallel runs never read a half-written file.
make_queries() { # file count
  local f=$1 n=${2:-200000}
  [ -s "$f" ] && [ "$(wc -l < "$f")" -eq "$n" ] && return 0
  awk -v n="$n" 'BEGIN {
    for (i = 0; i < n; i++) {
      r = i % 20
      if (r < 13)       printf "q%07d.w.tap.test A\n", i
      else if (r < 15)  printf "q%07d.w.tap.test AAAA\n", i
      else if (r == 15) print "www.tap.test A"
      else if (r == 16) print "alias.tap.test A"
      else if (r == 17) print "big.tap.test TXT"
      else if (r == 18) printf "nx%07d.tap.test A\n", i
      else              print "tap.test MX"
    } }' > "$f.$$" && mv -f "$f.$$" "$f"
}

# Wait until a DNS server answers on 127.0.0.1:port (max ~15 s); fails early
# if the optional PID has exited (and also if it exits right after answering).
wait_dns() { # port [pid]
  for _ in $(seq 1 60); do
    if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then return 1; fi
    if dig +time=1 +tries=1 +short @127.0.0.1 -p "$1" www.tap.test A >/dev/null 2>&1; then
      if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then return 1; fi
      return 0
    fi
    sleep 0.25
  done
  return 1
}

# Is something listening at the dnstap destination? (no connection is made:
# a probe connect would look like a broken producer to the receiver)
receiver_ready() {
  case "$DEST_KIND" in
    unix) [ -S "$DEST_PATH" ] ;;
    tcp)  ss -Hltn "sport = :$DEST_PORT" 2>/dev/null | grep -q . ;;
    file) return 0 ;;
  esac
}

wait_receiver() { # seconds
  for _ in $(seq 1 $(( ${1:-5} * 10 ))); do
    receiver_ready && return 0
    sleep 0.1
  done
  return 1
}

# Bash runs traps only after a *foreground* child exits, so a SIGTERM sent to
# a script busy in a 30 s dnsperf would wait for it. Long steps therefore run
# in the background and are waited for: `wait` returns at once on a signal and
# the EXIT trap can stop the child (its PID is in BG_PID).
run_waited() { # command...
  "$@" &
  BG_PID=$!
  wait "$BG_PID"
  local rc=$?
  BG_PID=
  return $rc
}

# stop_pid PID [name] [signal] : signal (default TERM), wait up to 10 s, then
# SIGKILL. Only ever called with PIDs this script started.
stop_pid() {
  local pid=$1 name=${2:-process} sig=${3:-TERM}
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -"$sig" "$pid" 2>/dev/null
  for _ in $(seq 1 500); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.02
  done
  log "$name ($pid) did not exit after SIG$sig, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

# Start a receiver in the background; sets RECV_PID / RECV_KIND.
#   start_receiver fstrm|go|node DEST OUTFILE LOGFILE
# fstrm (fstrm_capture) and go (Go dnstap CLI) speak BIDIRECTIONAL Frame
# Streams only; node (./fstrm-capture.js) also accepts unidirectional senders.
start_receiver() {
  local kind=$1 dest=$2 out=$3 logf=$4
  RECV_KIND=$kind
  parse_dest "$dest"
  case "$DEST_KIND" in
    unix) rm -f "$DEST_PATH" ;;
    file) die "a receiver needs unix: or tcp:" ;;
  esac
  case "$kind" in
    fstrm)
      if [ "$DEST_KIND" = unix ]; then
        fstrm_capture -t "$TAP_TYPE" -u "$DEST_PATH" -w "$out" >"$logf" 2>&1 &
      else
        fstrm_capture -t "$TAP_TYPE" -a "$DEST_HOST" -p "$DEST_PORT" -w "$out" >"$logf" 2>&1 &
      fi ;;
    node)
      node "$PEERS_DIR/fstrm-capture.js" "$dest" "$out" >"$logf" 2>&1 & ;;
    go)
      local bin=${DNSTAP_BIN:-$(command -v dnstap)}
      [ -x "$bin" ] || die "Go dnstap CLI not found (apt-get install golang-github-dnstap-golang-dnstap-cli, or set DNSTAP_BIN)"
      # The CLI exits on SIGINT without flushing a binary (-w) file, so the
      # tail is lost; text output (-q/-y/-j) is flushed per message. OUTFILE
      # ending in .txt -> quiet text, .yaml -> YAML, .json -> JSON lines.
      local fmt=()
      case "$out" in *.txt) fmt=(-q) ;; *.yaml) fmt=(-y) ;; *.json) fmt=(-j) ;; esac
      if [ "$DEST_KIND" = unix ]; then
        "$bin" -u "$DEST_PATH" "${fmt[@]}" -w "$out" >"$logf" 2>&1 &
      else
        "$bin" -l "$DEST_HOST:$DEST_PORT" "${fmt[@]}" -w "$out" >"$logf" 2>&1 &
      fi ;;
    *) die "unknown receiver '$kind' (fstrm|go|node)" ;;
  esac
  RECV_PID=$!
  wait_receiver 5 || { log "receiver did not come up:"; cat "$logf" >&2; return 1; }
}

# fstrm_capture and fstrm-capture.js close their file on SIGTERM; the Go CLI only on SIGINT.
stop_receiver() {
  if [ "${RECV_KIND:-}" = go ]; then stop_pid "${RECV_PID:-}" receiver INT
  else stop_pid "${RECV_PID:-}" receiver TERM; fi
  RECV_PID=
}

# Frame count / message-type histogram of a dnstap Frame Streams file.
tap_count() { dnstap-ldns -r "$1" 2>/dev/null | wc -l; }
tap_types() { # -> "CQ=10 CR=10"; the Go CLI knows UQ/UR and DOT/DOH, dnstap-ldns 0.2.1 does not
  local bin=${DNSTAP_BIN:-$(command -v dnstap)} col=2
  [ -x "$bin" ] || col=3
  if [ "$col" = 2 ]; then "$bin" -q -r "$1" 2>/dev/null; else dnstap-ldns -r "$1" 2>/dev/null; fi |
    awk -v c="$col" '{n[$c]++} END {for (k in n) printf "%s=%d\n", k, n[k]}' | sort | tr '\n' ' ' | sed 's/ *$//'
}
