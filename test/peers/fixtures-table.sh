#!/usr/bin/env bash
# Refresh the fixtures table in DIR/README.md (between the lines
# "<!-- fixtures-table:start -->" and "<!-- fixtures-table:end -->"; the rest of
# the README is written by hand) and DIR/SHA256SUMS, from the *.fstrm files
# present. Columns: frames = lines of `dnstap-ldns -r`, types = histogram of
# `dnstap -q -r` (Go CLI), producer version = the installed Debian package.
#
#   fixtures-table.sh [DIR]   (default: test/fixtures)
set -u
PEERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$PEERS_DIR/lib.sh"
DIR=${1:-$PEERS_DIR/../fixtures}
README="$DIR/README.md"

declare -A WHAT=(
  [unbound-local-unix]="unbound answering from local-data (no upstream); dnsperf + digs incl. [::1] and TCP"
  [unbound-local-tcp]="unbound local-data as in unbound-local-unix, dnstap over TCP (dnstap-tls: no)"
  [unbound-local-unix-bulk]="6500 dnsperf queries through unbound (for throughput/replay tests)"
  [unbound-local-unix-unidir]="unbound with dnstap-bidirectional: no (START ... STOP, no READY/ACCEPT), received by test/peers/fstrm-capture.js; odd qnames"
  [unbound-local-tcp-unidir]="as unbound-local-unix-unidir over TCP, with [::1] client queries"
  [unbound-stub-unix]="unbound iterating to a local knotd via stub-zone (RESOLVER_* frames carry query_zone); odd qnames"
  [unbound-forward-tcp]="unbound forwarding to a local knotd via forward-zone (FORWARDER_*), dnstap over TCP"
  [bind-auth-unix]="named authoritative for tap.test, recursion no; includes an nsupdate (UPDATE_QUERY/UPDATE_RESPONSE)"
  [bind-auth-file]="as bind-auth-unix, file written by named itself (dnstap-output file, libfstrm file writer)"
  [bind-resolver-unix]="named recursive, static-stub to a local knotd (RQ/RR next to CQ/CR; AQ/AR for +norec and CH); [::1] clients; odd qnames"
  [knot-auth-unix]="knotd authoritative with mod-dnstap (sink unix:)"
  [knot-auth-unix-rwq]="knotd mod-dnstap with responses-with-queries: on (AUTH_RESPONSE frames also carry query_message); [::1] clients; odd qnames"
  [kresd-local-unix]="kresd answering via policy.ANSWER; includes DoT and DoH (socket_protocol DOT/DOH) and [::1] queries"
  [kresd-stub-unix]="kresd with policy.STUB to a local knotd; odd qnames"
  [dnsdist-spoof-unix]="dnsdist SpoofAction/RCodeAction (self-answered) with DnstapLogAction + DnstapLogResponseAction"
  [dnsdist-backend-tcp]="dnsdist proxying to a local knotd, dnstap over TCP; [::1] clients; odd qnames"
  [pdns-forward-unix]="pdns_recursor forwarding tap.test to a local knotd (it only logs outgoing queries)"
  [pdns-forward-tcp]="as pdns-forward-unix, dnstap over TCP (pdns opens 2 Frame Streams connections with threads=1)"
  [kdig-tool-file]="kdig -E (knot-dnsutils) writing TOOL_QUERY/TOOL_RESPONSE itself"
)
declare -A PKG=([unbound]=unbound [bind]=bind9 [knot]=knot [kresd]=knot-resolver [dnsdist]=dnsdist [pdns]=pdns-recursor [kdig]=knot-dnsutils)
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }

table() {
  echo '| file | producer (Debian version) | transport | frames | types | bytes | what |'
  echo '| --- | --- | --- | --- | --- | --- | --- |'
  local f n prod tr
  for f in "$DIR"/*.fstrm; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .fstrm); prod=${n%%-*}; tr=$(echo "$n" | cut -d- -f3)
    [ "$tr" = file ] && tr="file (written by producer)"
    printf '| %s | %s %s | %s | %s | %s | %s | %s |\n' "$n.fstrm" "${PKG[$prod]:-$prod}" \
      "$(pkgver "${PKG[$prod]:-$prod}")" "$tr" "$(tap_count "$f")" "$(tap_types "$f")" \
      "$(stat -c %s "$f")" "${WHAT[$n]:-}"
  done
}

[ -f "$README" ] || printf '# dnstap fixtures\n\n<!-- fixtures-table:start -->\n<!-- fixtures-table:end -->\n' > "$README"
grep -q '^<!-- fixtures-table:start -->$' "$README" || die "$README has no <!-- fixtures-table:start --> line"
table > "$DIR/.table.$$"
awk -v tf="$DIR/.table.$$" '
  /^<!-- fixtures-table:start -->$/ { print; while ((getline l < tf) > 0) print l; skip = 1; next }
  /^<!-- fixtures-table:end -->$/ { skip = 0 }
  !skip { print }' "$README" > "$README.$$" && mv -f "$README.$$" "$README"
rm -f "$DIR/.table.$$"
(cd "$DIR" && sha256sum -- *.fstrm > SHA256SUMS)
log "refreshed the table in $README and $DIR/SHA256SUMS"
