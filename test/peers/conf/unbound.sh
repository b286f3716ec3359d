# shellcheck shell=bash
# Unbound config: local (local-data), stub (stub-zone) or forward (forward-zone); dnstap to a unix socket or TCP.
# Sourced by ../run-producer.sh; uses its variables (MODE, DEST_*, DNS_PORT,
# AUTH_PORT, WORKDIR, IPV6, THREADS, IDENTITY ...) and sets CONF and START.

conf_unbound() {
  local tapdest mode_conf=
  if [ "$DEST_KIND" = unix ]; then
    tapdest="dnstap-socket-path: \"$DEST_PATH\""
  else
    tapdest="dnstap-ip: \"$DEST_HOST@$DEST_PORT\"
  dnstap-tls: no"
  fi
  case "$MODE" in
    local) mode_conf="local-zone: \"tap.test.\" static
  local-data: \"tap.test. 60 IN SOA ns.tap.test. hostmaster.tap.test. 1 3600 600 86400 60\"
  local-data: \"tap.test. 60 IN NS ns.tap.test.\"
  local-data: \"tap.test. 60 IN MX 10 mail.tap.test.\"
  local-data: \"ns.tap.test. 60 IN A 127.0.0.1\"
  local-data: \"www.tap.test. 60 IN A 198.51.100.1\"
  local-data: \"www.tap.test. 60 IN AAAA 2001:db8::1\"
  local-data: \"mail.tap.test. 60 IN A 198.51.100.25\"
  local-data: \"alias.tap.test. 60 IN CNAME www.tap.test.\"
  local-data: 'txt.tap.test. 60 IN TXT \"dnstap peer test record\"'
  local-data: 'big.tap.test. 60 IN TXT \"$(printf '0123456789abcdef%.0s' 1 2 3 4 5 6 7 8)\" \"$(printf '0123456789abcdef%.0s' 1 2 3 4 5 6 7 8)\" \"$(printf '0123456789abcdef%.0s' 1 2 3 4 5 6 7 8)\"'
  local-zone: \"w.tap.test.\" redirect
  local-data: \"w.tap.test. 60 IN A 198.51.100.2\"
  local-data: \"w.tap.test. 60 IN AAAA 2001:db8::2\"" ;;
    stub) mode_conf="local-zone: \"test.\" nodefault
stub-zone:
  name: \"tap.test.\"
  stub-addr: 127.0.0.1@$AUTH_PORT" ;;
    forward) mode_conf="local-zone: \"test.\" nodefault
forward-zone:
  name: \"tap.test.\"
  forward-addr: 127.0.0.1@$AUTH_PORT" ;;
  esac
  CONF="$WORKDIR/unbound.conf"
  cat > "$CONF" <<EOF
# unbound $MODE mode, dnstap -> $DEST
server:
  username: ""
  chroot: ""
  directory: "$WORKDIR"
  pidfile: "$WORKDIR/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  interface: 127.0.0.1@$DNS_PORT
$( [ "$IPV6" = 1 ] && echo "  interface: ::1@$DNS_PORT" )
  do-ip6: $( [ "$IPV6" = 1 ] && echo yes || echo no )
  outgoing-interface: 127.0.0.1
  do-not-query-localhost: no
  root-hints: "$WORKDIR/root.hints"
  num-threads: $THREADS
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  qname-minimisation: no
  $mode_conf
remote-control:
  control-enable: no
dnstap:
  dnstap-enable: yes
  dnstap-bidirectional: $BIDIRECTIONAL
  $tapdest
  dnstap-send-identity: yes
  dnstap-send-version: yes
  dnstap-identity: "$IDENTITY"
  dnstap-log-client-query-messages: yes
  dnstap-log-client-response-messages: yes
  dnstap-log-resolver-query-messages: yes
  dnstap-log-resolver-response-messages: yes
  dnstap-log-forwarder-query-messages: yes
  dnstap-log-forwarder-response-messages: yes
EOF
  unbound-checkconf "$CONF" >/dev/null || die "unbound-checkconf failed for $CONF"
  START=(unbound -d -c "$CONF")
}
