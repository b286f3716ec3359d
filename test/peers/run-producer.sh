#!/usr/bin/env bash
# Start a real dnstap producer (Debian packages), point its dnstap output at
# DEST, drive it with dnsperf for SECONDS at QPS, then stop everything this
# script started (by PID). The dnstap receiver is NOT started here: start it
# first (fstrm_capture, ./fstrm-capture.js, the Go dnstap CLI, or Snowtap).
# Loopback only; runs as root or not, with or without a TTY.
#
#   run-producer.sh PRODUCER DEST SECONDS QPS
#     PRODUCER  unbound | bind | knot | kresd | dnsdist | pdns
#     DEST      unix:/abs/path | tcp:127.0.0.1:PORT | file:/abs/path
#               (file: = the producer writes the Frame Streams file itself;
#                only bind and knot can)
#     SECONDS   dnsperf run time (0 = start, answer no load, stop)
#     QPS       dnsperf rate limit (0 = as fast as possible)
#
# Exit codes: 0 ok, 2 usage or start failure, 3 the producer cannot send
# dnstap to that kind of DEST, 4 a needed program is not installed.
#
# Environment knobs (all optional):
#   MODE         variant of the producer (default first in list):
#                  unbound: local | stub | forward
#                  bind: auth | resolver | forwarder (auth accepts dynamic
#                        updates from 127/8: nsupdate -> UPDATE_QUERY/RESPONSE)
#                  knot: auth   kresd: local | stub   dnsdist: spoof | backend
#                  pdns: forward
#                stub/forward/resolver/forwarder/backend/pdns also start a
#                plain knotd (no dnstap) as the upstream on 127.0.0.1:$AUTH_PORT
#   DNS_PORT     producer DNS port on 127.0.0.1 (and ::1) (5300)
#   AUTH_PORT    upstream knotd port (5301)
#   THREADS      producer worker threads (1)
#   IPV6=1       also listen on [::1]:$DNS_PORT (INET6 client frames)
#   BIDIRECTIONAL  unbound only: yes|no  (yes; no = unidirectional Frame Streams)
#   IDENTITY     dnstap identity string (<producer>-peer)
#   FSTRM_OPTS   dnsdist/pdns: libfstrm options as a Lua table, e.g.
#                '{inputQueueSize=16384, outputQueueSize=512}' (bigger queues
#                = fewer frames dropped by the producer under bursts)
#   KNOT_RWQ=on  knot: responses-with-queries (AR frames carry the query too)
#   KRESD_TLS_PORT / KRESD_DOH_PORT  kresd: extra DoT / DoH (HTTP/2) listeners
#                (ephemeral self-signed cert) -> socket_protocol DOT / DOH
#   QUERY_FILE   dnsperf input (default: generated, 200000 mostly-unique names)
#   DNSPERF_ARGS extra dnsperf args (default "-c 4 -q 200")
#   EXTRA_CMD    shell command run after dnsperf, before stopping (e.g. digs.sh);
#                it sees DNS_PORT, IPV6, KRESD_TLS_PORT, KRESD_DOH_PORT
#   FLUSH_WAIT   seconds to wait after load before SIGTERM (2; pdns and
#                dnsdist lose frames still buffered in libfstrm on exit)
#   WORKDIR      where configs/logs go (default mktemp under /tmp)
#   KEEP=1       keep WORKDIR (configs + logs) afterwards
#   RENDER_ONLY=1  write the configs to WORKDIR, print their paths, exit
#
# Output: dnsperf's "Queries sent/completed/lost" lines on stdout (parsed by
# test/support/peers.ts), progress and errors on stderr.
set -u
PEERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$PEERS_DIR/lib.sh"

[ $# -eq 4 ] || { sed -n '2,50p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
PRODUCER=$1 DEST=$2 SECONDS_=$3 QPS=$4
[[ $SECONDS_ =~ ^[0-9]+$ && $QPS =~ ^[0-9]+$ ]] || die "SECONDS and QPS must be integers"
parse_dest "$DEST"

DNS_PORT=${DNS_PORT:-5300}
AUTH_PORT=${AUTH_PORT:-5301}
THREADS=${THREADS:-1}
BIDIRECTIONAL=${BIDIRECTIONAL:-yes}
FLUSH_WAIT=${FLUSH_WAIT:-2}
DNSPERF_ARGS=${DNSPERF_ARGS:--c 4 -q 200}
IPV6=${IPV6:-0}
[[ $DNS_PORT =~ ^[0-9]+$ && $AUTH_PORT =~ ^[0-9]+$ ]] || die "DNS_PORT and AUTH_PORT must be numbers"
[ "$DNS_PORT" != "$AUTH_PORT" ] || die "DNS_PORT and AUTH_PORT must differ"

case "$PRODUCER" in
  unbound) MODE=${MODE:-local}; MODES="local stub forward"; KINDS="unix tcp"; NEEDS="unbound unbound-checkconf" ;;
  bind)    MODE=${MODE:-auth};  MODES="auth resolver forwarder"; KINDS="unix file"; NEEDS="named named-checkconf" ;;
  knot)    MODE=${MODE:-auth};  MODES="auth"; KINDS="unix file"; NEEDS="knotd knotc" ;;
  kresd|knot-resolver) PRODUCER=kresd; MODE=${MODE:-local}; MODES="local stub"; KINDS="unix"; NEEDS="kresd" ;;
  dnsdist) MODE=${MODE:-spoof}; MODES="spoof backend"; KINDS="unix tcp"; NEEDS="dnsdist" ;;
  pdns|pdns-recursor) PRODUCER=pdns; MODE=${MODE:-forward}; MODES="forward"; KINDS="unix tcp"; NEEDS="pdns_recursor" ;;
  *) die "unknown producer '$PRODUCER' (unbound|bind|knot|kresd|dnsdist|pdns)" ;;
esac
IDENTITY=${IDENTITY:-$PRODUCER-peer}
[[ " $MODES " == *" $MODE "* ]] || die "$PRODUCER: unknown MODE '$MODE' (one of: $MODES)"
if [[ " $KINDS " != *" $DEST_KIND "* ]]; then
  log "$PRODUCER (Debian bookworm build) cannot send dnstap to '$DEST_KIND' (supports: $KINDS)"
  exit 3
fi

NEED_AUTH=0
case "$PRODUCER/$MODE" in
  unbound/stub|unbound/forward|bind/resolver|bind/forwarder|kresd/stub|dnsdist/backend|pdns/forward) NEED_AUTH=1 ;;
esac
[ "$NEED_AUTH" = 1 ] && NEEDS="$NEEDS knotd"
[ "${RENDER_ONLY:-0}" = 1 ] || NEEDS="$NEEDS dig dnsperf ss"
for bin in $NEEDS; do
  command -v "$bin" >/dev/null 2>&1 || { log "missing program '$bin' (see test/peers/README.md for the apt packages)"; exit 4; }
done
if [ "$PRODUCER" = knot ] && ! compgen -G '/usr/lib/*/knot/modules-*/dnstap.so' >/dev/null; then
  log "missing knot mod-dnstap (apt-get install knot-module-dnstap)"; exit 4
fi

WORKDIR=${WORKDIR:-$(mktemp -d "/tmp/peers.$PRODUCER.XXXXXX")}
mkdir -p "$WORKDIR"
if [ -z "${QUERY_FILE:-}" ]; then
  QUERY_FILE=/tmp/peers-queries-200000.txt
  make_queries "$QUERY_FILE" 200000
fi
[ -r "$QUERY_FILE" ] || die "QUERY_FILE '$QUERY_FILE' is not readable"

PROD_PID='' AUTH_PID='' BG_PID=''
cleanup() {
  stop_pid "$BG_PID" "load step" TERM
  stop_pid "$PROD_PID" "$PRODUCER"
  stop_pid "$AUTH_PID" "upstream knotd"
  if [ "${KEEP:-0}" != 1 ] && [ "${RENDER_ONLY:-0}" != 1 ]; then rm -rf "$WORKDIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp "$ZONE_SRC" "$WORKDIR/tap.test.zone"
# Root hints point at 127.0.0.2 where nothing answers: a resolver that looks
# beyond tap.test must never reach the real root servers.
printf '. 3600000 IN NS ns.tap.test.\nns.tap.test. 3600000 IN A 127.0.0.2\n' > "$WORKDIR/root.hints"

# One file per producer under conf/ defines conf_<producer> (sets CONF, START).
# shellcheck source=/dev/null
. "$PEERS_DIR/conf/$PRODUCER.sh"
# shellcheck source=conf/upstream.sh
. "$PEERS_DIR/conf/upstream.sh"
"conf_$PRODUCER"
[ "$NEED_AUTH" = 1 ] && write_auth_conf
if [ "${RENDER_ONLY:-0}" = 1 ]; then
  ls -1 "$WORKDIR"/*.conf "$WORKDIR"/*.lua "$WORKDIR"/auth/*.conf 2>/dev/null
  exit 0
fi

# ---------------------------------------------------------------- run
port_busy() { ss -Hlnu "sport = :$1" 2>/dev/null | grep -q . || ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
port_busy "$DNS_PORT" && die "port $DNS_PORT is already in use (set DNS_PORT)"
if [ "$NEED_AUTH" = 1 ]; then
  port_busy "$AUTH_PORT" && die "port $AUTH_PORT is already in use (set AUTH_PORT)"
  knotd -c "$WORKDIR/auth/knot.conf" > "$WORKDIR/auth.log" 2>&1 &
  AUTH_PID=$!
  if ! wait_dns "$AUTH_PORT" "$AUTH_PID"; then
    cat "$WORKDIR/auth.log" >&2; die "upstream knotd did not start"
  fi
fi
if [ "$DEST_KIND" != file ] && ! wait_receiver 5; then
  log "WARNING: nothing is listening at $DEST yet; $PRODUCER will retry, early frames may be lost"
fi

log "starting $PRODUCER ($MODE) -> $DEST: ${START[*]}"
"${START[@]}" > "$WORKDIR/producer.log" 2>&1 &
PROD_PID=$!
if ! wait_dns "$DNS_PORT" "$PROD_PID"; then
  cat "$WORKDIR/producer.log" >&2
  die "$PRODUCER did not answer on 127.0.0.1:$DNS_PORT"
fi
log "$PRODUCER pid $PROD_PID answering on 127.0.0.1:$DNS_PORT"

if [ "$SECONDS_" -gt 0 ]; then
  qps_arg=(); [ "$QPS" -gt 0 ] && qps_arg=(-Q "$QPS")
  # shellcheck disable=SC2086
  run_waited dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$QUERY_FILE" -l "$SECONDS_" "${qps_arg[@]}" \
    $DNSPERF_ARGS > "$WORKDIR/dnsperf.out" 2>&1 || log "dnsperf exited with $?"
  grep -E 'Queries (sent|completed|lost)|Queries per second|Response codes' "$WORKDIR/dnsperf.out" | sed 's/^ */  /'
fi
if [ -n "${EXTRA_CMD:-}" ]; then
  export DNS_PORT IPV6 KRESD_TLS_PORT="${KRESD_TLS_PORT:-}" KRESD_DOH_PORT="${KRESD_DOH_PORT:-}"
  run_waited bash -c "$EXTRA_CMD" || log "EXTRA_CMD failed"
fi

run_waited sleep "$FLUSH_WAIT"
stop_t0=$(date +%s%N)
stop_pid "$PROD_PID" "$PRODUCER"; PROD_PID=
# Parsed by tests: a DNS server must not take longer to stop because of its dnstap receiver.
echo "  Producer stop ms: $(( ($(date +%s%N) - stop_t0) / 1000000 ))"
if grep -v 'built with' "$WORKDIR/producer.log" | grep -q -i -E 'dnstap.*(fail|error)|(fail|error).*dnstap'; then
  log "producer log mentions dnstap errors:"
  grep -v 'built with' "$WORKDIR/producer.log" | grep -i dnstap | tail -5 >&2
fi
[ "${KEEP:-0}" = 1 ] && log "kept $WORKDIR"
exit 0
