#!/usr/bin/env bash
# A fixed set of varied queries against the producer on 127.0.0.1:$DNS_PORT
# (used as EXTRA_CMD by make-capture.sh): UDP and TCP, EDNS on/off, DO bit,
# +norec, CNAME, a ~400-byte TXT, NXDOMAIN, [::1] when IPV6=1, and kdig
# DoT/DoH when KRESD_TLS_PORT/KRESD_DOH_PORT are set.
# ODD_NAMES=1 adds names a CSV writer must escape or keep apart: mixed case,
# a dot inside a label, space, quote, backslash, non-ASCII and control bytes,
# the root, class CH, an unknown qtype TYPE65534 and an ECS option (dig sends them as
# written; the producers echo them in their responses).
P=${DNS_PORT:-5300}
q() { dig +time=2 +tries=1 +short "$@" >/dev/null 2>&1 || true; }
q @127.0.0.1 -p "$P" www.tap.test A
q @127.0.0.1 -p "$P" www.tap.test AAAA
q @127.0.0.1 -p "$P" +tcp alias.tap.test A
q @127.0.0.1 -p "$P" +tcp big.tap.test TXT
q @127.0.0.1 -p "$P" +norec mail.tap.test A
q @127.0.0.1 -p "$P" +dnssec tap.test SOA
q @127.0.0.1 -p "$P" +noedns txt.tap.test TXT
q @127.0.0.1 -p "$P" +bufsize=4096 +nsid tap.test MX
q @127.0.0.1 -p "$P" nonexistent.tap.test A
q @127.0.0.1 -p "$P" +tcp +keepopen www.tap.test A mail.tap.test A
if [ "${IPV6:-0}" = 1 ]; then
  q @::1 -p "$P" www.tap.test A
  q @::1 -p "$P" +tcp v6.w.tap.test AAAA
fi
if [ "${ODD_NAMES:-0}" = 1 ]; then
  q @127.0.0.1 -p "$P" WwW.TaP.TeSt A
  q @127.0.0.1 -p "$P" 'dot\.inside.w.tap.test' A
  q @127.0.0.1 -p "$P" 'sp\ ace.w.tap.test' A
  q @127.0.0.1 -p "$P" 'q\"uote\,comma.w.tap.test' TXT
  q @127.0.0.1 -p "$P" 'back\\slash.w.tap.test' A
  q @127.0.0.1 -p "$P" '\000nul\255.w.tap.test' A
  q @127.0.0.1 -p "$P" '\195\169t\195\169.w.tap.test' AAAA
  q @127.0.0.1 -p "$P" +subnet=192.0.2.0/24 ecs.w.tap.test A
  q @127.0.0.1 -p "$P" . NS
  q @127.0.0.1 -p "$P" TYPE65534 x.w.tap.test
  q @127.0.0.1 -p "$P" version.bind CH TXT
fi
# kresd DoT / DoH listeners (run-producer.sh KRESD_TLS_PORT / KRESD_DOH_PORT)
k() { kdig +time=2 +retry=0 +short "$@" >/dev/null 2>&1 || true; }
if [ -n "${KRESD_TLS_PORT:-}" ]; then
  k +tls @127.0.0.1 -p "$KRESD_TLS_PORT" www.tap.test A
  k +tls @127.0.0.1 -p "$KRESD_TLS_PORT" dot.w.tap.test AAAA
fi
if [ -n "${KRESD_DOH_PORT:-}" ]; then
  k +https @127.0.0.1 -p "$KRESD_DOH_PORT" www.tap.test A
  k +https-get @127.0.0.1 -p "$KRESD_DOH_PORT" doh.w.tap.test AAAA
fi
exit 0
