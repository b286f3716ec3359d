#!/usr/bin/env bash
# Write reference dnstap captures (Frame Streams files of real dnstap, made by
# real DNS software from Debian) into OUTDIR, then refresh the fixtures table
# in OUTDIR/README.md and OUTDIR/SHA256SUMS.
#
#   make-capture.sh [OUTDIR] [NAME_FILTER]
#     OUTDIR       default: test/fixtures of this repository
#     NAME_FILTER  only build fixtures whose name contains this
#   REBUILD=1      also rebuild fixtures that already exist (default: keep
#                  them; tests pin their counts, so regenerate on purpose only)
#
# Names are <producer>-<mode>-<transport>[-variant].fstrm. Receivers:
# fstrm_capture (fstrm-bin, the libfstrm reference receiver) for
# bidirectional senders, ./fstrm-capture.js for unidirectional ones (which
# fstrm_capture drops); "file" fixtures are written by the producer itself.
# Every capture is checked with `dnstap -q -r` and `dnstap-ldns -r` (same
# frame count, no decode failure). Runs inside a private network namespace
# (unshare -n, only lo) when it can, so nothing can leave the machine and the
# fixed ports below cannot clash; NO_NETNS=1 disables that.
set -u
PEERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${PEERS_NETNS:-}" ] && [ "${NO_NETNS:-0}" != 1 ] && unshare -n true 2>/dev/null; then
  exec unshare -n env PEERS_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi
# shellcheck source=lib.sh
. "$PEERS_DIR/lib.sh"

OUTDIR=$(mkdir -p "${1:-$PEERS_DIR/../fixtures}" && cd "${1:-$PEERS_DIR/../fixtures}" && pwd)
FILTER=${2:-}
MAX_BYTES=$((2 * 1024 * 1024))
TMP=$(mktemp -d /tmp/peers-capture.XXXXXX)
RECV_PID=
trap 'stop_receiver; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

make_queries "$TMP/q300.txt" 300
make_queries "$TMP/q6500.txt" 6500

# name | producer | MODE | dest kind | extra env (space separated k=v; RECV=node
# picks the Node receiver, ODD_NAMES=1 adds digs.sh's odd names)
FIXTURES=(
  "unbound-local-unix|unbound|local|unix|IPV6=1"
  "unbound-local-tcp|unbound|local|tcp|"
  "unbound-local-unix-bulk|unbound|local|unix|BULK=1"
  "unbound-local-unix-unidir|unbound|local|unix|BIDIRECTIONAL=no RECV=node ODD_NAMES=1"
  "unbound-local-tcp-unidir|unbound|local|tcp|BIDIRECTIONAL=no RECV=node IPV6=1"
  "unbound-stub-unix|unbound|stub|unix|ODD_NAMES=1"
  "unbound-forward-tcp|unbound|forward|tcp|"
  "bind-auth-unix|bind|auth|unix|IPV6=1 NSUPDATE=1"
  "bind-auth-file|bind|auth|file|NSUPDATE=1"
  "bind-resolver-unix|bind|resolver|unix|IPV6=1 ODD_NAMES=1"
  "knot-auth-unix|knot|auth|unix|IPV6=1"
  "knot-auth-unix-rwq|knot|auth|unix|KNOT_RWQ=on IPV6=1 ODD_NAMES=1"
  "kresd-local-unix|kresd|local|unix|IPV6=1 KRESD_TLS_PORT=5310 KRESD_DOH_PORT=5311"
  "kresd-stub-unix|kresd|stub|unix|ODD_NAMES=1"
  "dnsdist-spoof-unix|dnsdist|spoof|unix|IPV6=1"
  "dnsdist-backend-tcp|dnsdist|backend|tcp|IPV6=1 ODD_NAMES=1"
  "pdns-forward-unix|pdns|forward|unix|"
  "pdns-forward-tcp|pdns|forward|tcp|"
  "kdig-tool-file|kdig|auth|file|"
)

EXTRA_BASE="bash '$PEERS_DIR/digs.sh'"
NSUPDATE_CMD='printf "server 127.0.0.1 %s\nzone tap.test\nupdate add upd1.tap.test 60 A 198.51.100.9\nupdate delete www.tap.test AAAA\nsend\n" "$DNS_PORT" | nsupdate'
KDIG_CMD='kdig @127.0.0.1 -p "$DNS_PORT" -E "$KDIG_OUT" +noall www.tap.test A alias.tap.test A +tcp big.tap.test TXT nx.tap.test A +dnssec tap.test SOA +nsid +tcp q1.w.tap.test AAAA >/dev/null'

# Both reference decoders must read the whole file and agree on the count.
verify() { # file -> prints the frame count
  local f=$1 n q err
  n=$(tap_count "$f")
  err=$(dnstap -q -r "$f" 2>&1 >/dev/null | grep -v 'opened input file')
  q=$(dnstap -q -r "$f" 2>/dev/null | wc -l)
  dnstap-ldns -r "$f" >/dev/null 2>&1 || { log "$f: dnstap-ldns failed"; return 1; }
  [ -z "$err" ] || { log "$f: Go dnstap: $err"; return 1; }
  [ "$n" = "$q" ] || { log "$f: dnstap-ldns counts $n frames, Go dnstap $q"; return 1; }
  echo "$n"
}

build_one() {
  local name=$1 producer=$2 mode=$3 kind=$4 envs=$5
  local out="$OUTDIR/$name.fstrm" dest rc=0 recv=fstrm extra=$EXTRA_BASE
  local -a envv=("MODE=$mode" "QUERY_FILE=$TMP/q300.txt" "DNSPERF_ARGS=-n 1 -c 2 -q 50" "FLUSH_WAIT=2")
  local secs=30 qps=300 e
  for e in $envs; do
    case "$e" in
      NSUPDATE=1) extra="$extra; $NSUPDATE_CMD" ;;
      BULK=1) envv+=("QUERY_FILE=$TMP/q6500.txt"); extra=true; qps=3000 ;;
      RECV=*) recv=${e#RECV=} ;;
      *) envv+=("$e") ;;
    esac
  done
  envv+=("EXTRA_CMD=$extra")
  case "$kind" in
    unix) dest="unix:$TMP/$name.sock" ;;
    tcp)  dest="tcp:127.0.0.1:6100" ;;
    file) dest="file:$TMP/$name.fstrm" ;;
  esac
  if [ "$producer" = kdig ]; then
    # kdig -E writes TOOL_QUERY/TOOL_RESPONSE itself; knot (its dnstap file is discarded) answers.
    producer=knot; dest="file:$TMP/ignored.fstrm"
    envv+=("KDIG_OUT=$TMP/$name.fstrm" "EXTRA_CMD=$KDIG_CMD"); secs=0
  fi
  if [ "$kind" != file ]; then
    start_receiver "$recv" "$dest" "$TMP/$name.fstrm" "$TMP/$name.capture.log" || return 1
  fi
  log "== $name: $producer MODE=$mode -> $dest ($recv)"
  env "${envv[@]}" "$PEERS_DIR/run-producer.sh" "$producer" "$dest" "$secs" "$qps" \
    > "$TMP/$name.run.log" 2>&1 || rc=$?
  stop_receiver
  grep -E 'Queries (sent|completed)|ERROR|WARNING' "$TMP/$name.run.log" >&2
  [ "$rc" = 0 ] || { log "$name: run-producer failed (rc=$rc)"; cat "$TMP/$name.run.log" >&2; return 1; }
  if [ "$recv" = node ] && ! grep -q unidirectional "$TMP/$name.capture.log"; then
    log "$name: the producer did not send unidirectional Frame Streams"; return 1
  fi
  local n; n=$(verify "$TMP/$name.fstrm") || return 1
  if [ "$n" -eq 0 ]; then log "$name: no frames captured"; return 1; fi
  if [ "$(stat -c %s "$TMP/$name.fstrm")" -gt "$MAX_BYTES" ]; then log "$name: over 2 MB, dropped"; return 1; fi
  mv -f "$TMP/$name.fstrm" "$out" && chmod 644 "$out"
  log "$name: $n frames, $(stat -c %s "$out") bytes, $(tap_types "$out")"
}

failed=()
for spec in "${FIXTURES[@]}"; do
  IFS='|' read -r name producer mode kind envs <<< "$spec"
  [ -n "$FILTER" ] && [[ $name != *"$FILTER"* ]] && continue
  if [ -e "$OUTDIR/$name.fstrm" ] && [ "${REBUILD:-0}" != 1 ]; then log "keeping $name.fstrm (REBUILD=1 to redo)"; continue; fi
  build_one "$name" "$producer" "$mode" "$kind" "$envs" || failed+=("$name")
done

"$PEERS_DIR/fixtures-table.sh" "$OUTDIR"
if [ ${#failed[@]} -gt 0 ]; then log "FAILED: ${failed[*]}"; exit 1; fi
log "$(ls "$OUTDIR"/*.fstrm | wc -l) fixtures in $OUTDIR"
