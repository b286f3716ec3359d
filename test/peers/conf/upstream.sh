# shellcheck shell=bash
# Plain authoritative knotd (no dnstap) for tap.test: the upstream of the stub/forward/resolver modes.
# Sourced by ../run-producer.sh; writes $WORKDIR/auth/knot.conf (listens on
# 127.0.0.1:$AUTH_PORT, serves $WORKDIR/tap.test.zone).

write_auth_conf() {
  mkdir -p "$WORKDIR/auth"
  cat > "$WORKDIR/auth/knot.conf" <<EOF
# plain authoritative upstream for tap.test (no dnstap)
server:
  rundir: "$WORKDIR/auth"
  listen: [ 127.0.0.1@$AUTH_PORT ]
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$WORKDIR/auth"
zone:
  - domain: tap.test
    file: "$WORKDIR/tap.test.zone"
EOF
}
