#!/usr/bin/env bash
# Run a reference dnstap receiver in the foreground until SIGINT/SIGTERM or
# until SECONDS pass; then stop it cleanly so the output is complete.
#
#   receiver.sh fstrm|node|go DEST OUTFILE [SECONDS]
#     fstrm  fstrm_capture (fstrm-bin): writes a Frame Streams file
#     node   ./fstrm-capture.js: the same, and also accepts unidirectional senders
#     go     Go dnstap CLI (DNSTAP_BIN or /usr/bin/dnstap): OUTFILE ending in
#            .txt/.yaml/.json gets text, anything else a Frame Streams file
#            (which loses its buffered tail on exit: prefer .txt)
#     DEST   unix:/abs/path | tcp:127.0.0.1:PORT
# fstrm and go speak bidirectional Frame Streams only (READY/ACCEPT/START);
# they drop a unidirectional sender (unbound dnstap-bidirectional: no).
set -u
PEERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$PEERS_DIR/lib.sh"
[ $# -ge 3 ] || { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
RECV_PID= BG_PID=
trap 'stop_pid "$BG_PID" sleep; stop_receiver' EXIT
trap 'exit 0' INT TERM
LOGFILE=${LOGFILE:-/tmp/peers-receiver.$$.log}
start_receiver "$1" "$2" "$3" "$LOGFILE" || exit 1
log "receiver $1 pid $RECV_PID listening on $2, writing $3 (log: $LOGFILE)"
if [ -n "${4:-}" ]; then run_waited sleep "$4"; else wait "$RECV_PID"; fi
