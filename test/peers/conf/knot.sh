# shellcheck shell=bash
# Knot DNS (knotd) authoritative with mod-dnstap (package knot-module-dnstap); sink unix socket or file.
# Sourced by ../run-producer.sh; uses its variables (MODE, DEST_*, DNS_PORT,
# AUTH_PORT, WORKDIR, IPV6, THREADS, IDENTITY ...) and sets CONF and START.

conf_knot() {
  local sink
  if [ "$DEST_KIND" = unix ]; then sink="unix:$DEST_PATH"; else sink="$DEST_PATH"; fi
  CONF="$WORKDIR/knot.conf"
  cat > "$CONF" <<EOF
# Knot DNS authoritative, mod-dnstap -> $DEST
server:
  rundir: "$WORKDIR"
  listen: [ 127.0.0.1@$DNS_PORT$( [ "$IPV6" = 1 ] && echo ", ::1@$DNS_PORT" ) ]
  udp-workers: $THREADS
  tcp-workers: $THREADS
  background-workers: 1
log:
  - target: stderr
    any: info
mod-dnstap:
  - id: tap
    sink: "$sink"
    identity: "$IDENTITY"
    version: "Knot DNS $(knotd --version | awk "{print \$NF}")"
    log-queries: on
    log-responses: on
    responses-with-queries: ${KNOT_RWQ:-off}
template:
  - id: default
    storage: "$WORKDIR"
    global-module: mod-dnstap/tap
zone:
  - domain: tap.test
    file: "$WORKDIR/tap.test.zone"
EOF
  knotc -c "$CONF" conf-check >/dev/null || die "knot conf-check failed for $CONF"
  START=(knotd -c "$CONF")
}
