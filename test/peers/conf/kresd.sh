# shellcheck shell=bash
# Knot Resolver (kresd) config: local (policy.ANSWER) or stub (policy.STUB); dnstap to a unix socket only.
# Sourced by ../run-producer.sh; uses its variables (MODE, DEST_*, DNS_PORT,
# AUTH_PORT, WORKDIR, IPV6, THREADS, IDENTITY ...) and sets CONF and START.

conf_kresd() {
  local mode_conf
  case "$MODE" in
    local) mode_conf="policy.add(policy.suffix(policy.ANSWER({
  [kres.type.A] = { rdata = kres.str2ip('198.51.100.2'), ttl = 60 },
  [kres.type.AAAA] = { rdata = kres.str2ip('2001:db8::2'), ttl = 60 },
}, true), { todname('tap.test.') }))" ;;
    stub) mode_conf="policy.add(policy.suffix(policy.STUB({'127.0.0.1@$AUTH_PORT'}), { todname('tap.test.') }))" ;;
  esac
  CONF="$WORKDIR/kresd.conf"
  cat > "$CONF" <<EOF
-- Knot Resolver $MODE mode, dnstap -> $DEST
log_level('notice')
net.ipv6 = false
net.listen('127.0.0.1', $DNS_PORT, { kind = 'dns' })
$( [ "$IPV6" = 1 ] && echo "net.listen('::1', $DNS_PORT, { kind = 'dns' })" )
$( [ -n "${KRESD_TLS_PORT:-}" ] && echo "net.listen('127.0.0.1', $KRESD_TLS_PORT, { kind = 'tls' })  -- ephemeral self-signed cert" )
$( [ -n "${KRESD_DOH_PORT:-}" ] && echo "net.listen('127.0.0.1', $KRESD_DOH_PORT, { kind = 'doh2' })" )
net.outgoing_v4('127.0.0.1')
-- nothing may leave the machine: no root priming, no time-skew probe, no RFC 5011
modules.unload('priming')
modules.unload('detect_time_skew')
modules.unload('ta_update')
modules.unload('ta_signal_query')
cache.size = 10 * MB
modules = {
  'hints > iterate',
  dnstap = {
    socket_path = "$DEST_PATH",
    identity = "$IDENTITY",
    version = "Knot Resolver " .. package_version(),
    client = { log_queries = true, log_responses = true, log_tcp_rtt = true },
  },
}
hints.root({ ['ns.tap.test.'] = '127.0.0.2' })
-- policy rules run before the RFC 6761 special-name rule that blocks .test
$mode_conf
EOF
  mkdir -p "$WORKDIR/kresd-run"
  START=(kresd -n -c "$CONF" "$WORKDIR/kresd-run")
}
