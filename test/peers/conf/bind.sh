# shellcheck shell=bash
# BIND named config: auth (tap.test primary, accepts updates from 127/8), resolver (static-stub) or forwarder.
# Sourced by ../run-producer.sh; uses its variables (MODE, DEST_*, DNS_PORT,
# AUTH_PORT, WORKDIR, IPV6, THREADS, IDENTITY ...) and sets CONF and START.

conf_bind() {
  local mode_conf
  case "$MODE" in
    auth) mode_conf="  recursion no;" ;;
    # static-stub server-addresses take no port, so resolver mode sets the
    # default remote port instead: the upstream knotd listens on 127.0.0.1:AUTH_PORT
    # (no fixed 127.0.0.2:53 that parallel runs would fight over).
    resolver|forwarder) mode_conf="  recursion yes;$( [ "$MODE" = resolver ] && printf '\n  port %s;' "$AUTH_PORT" )
  allow-recursion { 127.0.0.0/8; };
  query-source address 127.0.0.1;
  qname-minimization off;" ;;
  esac
  CONF="$WORKDIR/named.conf"
  {
    cat <<EOF
// BIND $MODE mode, dnstap -> $DEST
options {
  directory "$WORKDIR";
  pid-file "$WORKDIR/named.pid";
  session-keyfile "$WORKDIR/session.key";
  managed-keys-directory "$WORKDIR";
  listen-on port $DNS_PORT { 127.0.0.1; };
  listen-on-v6 port $DNS_PORT { $( [ "$IPV6" = 1 ] && echo "::1;" || echo "none;" ) };
  dnssec-validation no;
  notify no;
$mode_conf
  dnstap { all; };
  dnstap-output $DEST_KIND "$DEST_PATH";
  dnstap-identity "$IDENTITY";
  dnstap-version "BIND $(named -v | awk '{print $2}')";
};
controls { };
EOF
    case "$MODE" in
      auth) echo "zone \"tap.test\" { type primary; file \"$WORKDIR/tap.test.zone\"; allow-update { 127.0.0.0/8; }; };" ;;
      resolver) echo "zone \".\" { type hint; file \"$WORKDIR/root.hints\"; };"
                echo "zone \"tap.test\" { type static-stub; server-addresses { 127.0.0.1; }; };" ;;
      forwarder) echo "zone \".\" { type hint; file \"$WORKDIR/root.hints\"; };"
                 echo "zone \"tap.test\" { type forward; forward only; forwarders { 127.0.0.1 port $AUTH_PORT; }; };" ;;
    esac
  } > "$CONF"
  named-checkconf "$CONF" || die "named-checkconf failed for $CONF"
  START=(named -g -n "$THREADS" -c "$CONF")
}
