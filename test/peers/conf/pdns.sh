# shellcheck shell=bash
# PowerDNS Recursor config: forwards tap.test to the upstream knotd; dnstap (outgoing queries only) unix or TCP.
# Sourced by ../run-producer.sh; uses its variables (MODE, DEST_*, DNS_PORT,
# AUTH_PORT, WORKDIR, IPV6, THREADS, IDENTITY ...) and sets CONF and START.

conf_pdns() {
  local srv
  if [ "$DEST_KIND" = unix ]; then srv="$DEST_PATH"; else srv="$DEST_HOST:$DEST_PORT"; fi
  CONF="$WORKDIR/recursor.conf"
  cat > "$CONF" <<EOF
# PowerDNS Recursor forwarding tap.test to a local knotd; dnstap -> $DEST
config-dir=$WORKDIR
socket-dir=$WORKDIR
local-address=127.0.0.1$( [ "$IPV6" = 1 ] && echo ", ::1" )
local-port=$DNS_PORT
daemon=no
write-pid=no
disable-syslog=yes
loglevel=4
threads=$THREADS
security-poll-suffix=
server-id=$IDENTITY
dnssec=off
qname-minimization=no
forward-zones=tap.test=127.0.0.1:$AUTH_PORT
query-local-address=127.0.0.1
dont-query=
hint-file=$WORKDIR/root.hints
lua-config-file=$WORKDIR/recursor.lua
EOF
  local extra=${FSTRM_OPTS:-}; extra=${extra#\{}; extra=${extra%\}}
  cat > "$WORKDIR/recursor.lua" <<EOF
dnstapFrameStreamServer({"$srv"}, {logQueries=true, logResponses=true${extra:+, $extra}})
EOF
  START=(pdns_recursor --config-dir="$WORKDIR")
}

