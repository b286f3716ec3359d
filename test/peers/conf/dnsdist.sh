# shellcheck shell=bash
# dnsdist config: spoof (answers itself) or backend (proxies to the upstream knotd); dnstap unix or TCP.
# Sourced by ../run-producer.sh; uses its variables (MODE, DEST_*, DNS_PORT,
# AUTH_PORT, WORKDIR, IPV6, THREADS, IDENTITY ...) and sets CONF and START.

conf_dnsdist() {
  local logger mode_conf
  if [ "$DEST_KIND" = unix ]; then
    logger="newFrameStreamUnixLogger(\"$DEST_PATH\"${FSTRM_OPTS:+, $FSTRM_OPTS})"
  else
    logger="newFrameStreamTcpLogger(\"$DEST_HOST:$DEST_PORT\"${FSTRM_OPTS:+, $FSTRM_OPTS})"
  fi
  case "$MODE" in
    spoof) mode_conf="addAction(makeRule(\"w.tap.test.\"), SpoofAction({\"198.51.100.2\", \"2001:db8::2\"}))
addAction(makeRule(\"www.tap.test.\"), SpoofAction({\"198.51.100.1\", \"2001:db8::1\"}))
addAction(AllRule(), RCodeAction(DNSRCode.NXDOMAIN))
addSelfAnsweredResponseAction(AllRule(), DnstapLogResponseAction(\"$IDENTITY\", tap))" ;;
    backend) mode_conf="newServer({address=\"127.0.0.1:$AUTH_PORT\", checkName=\"www.tap.test.\"})
addResponseAction(AllRule(), DnstapLogResponseAction(\"$IDENTITY\", tap))
addCacheHitResponseAction(AllRule(), DnstapLogResponseAction(\"$IDENTITY\", tap))" ;;
  esac
  CONF="$WORKDIR/dnsdist.conf"
  cat > "$CONF" <<EOF
-- dnsdist $MODE mode, dnstap -> $DEST
setSecurityPollSuffix("")
setLocal("127.0.0.1:$DNS_PORT")
$( [ "$IPV6" = 1 ] && echo "addLocal(\"[::1]:$DNS_PORT\")" )
setACL({"127.0.0.0/8", "::1/128"})
tap = $logger
addAction(AllRule(), DnstapLogAction("$IDENTITY", tap))
$mode_conf
EOF
  dnsdist --check-config -C "$CONF" >/dev/null || die "dnsdist --check-config failed for $CONF"
  START=(dnsdist --supervised --disable-syslog -C "$CONF")
}
