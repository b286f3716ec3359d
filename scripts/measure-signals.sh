#!/usr/bin/env bash
# Candidate autoscaling signals under a saturated enricher, measured in one run: one enricher
# under a CPU limit enforced as the kubelet does (CFS quota, cgroup v1 or v2; needs root), two
# agents fed by `snowtap loadtest producer`, a real Prometheus (Debian package) scraping all
# three every second. Prints, every 5 s, each candidate over a 10 s window:
#   offered  = agents' records_in rate (what DNS servers send)
#   received = the enricher's records_received rate (what it managed to take)
#   backlog  = agents' queued + spooled bytes not yet sent (snowtap_agent_backlog_bytes)
#   elu      = enricher event-loop utilisation (rate of ..._event_loop_busy_seconds_total)
#   cpu      = enricher process CPU (cores)
#   dropped  = agents' records dropped/s (buffer full: the backlog has hit --buffer-bytes)
# Phases: LOW_RATE per agent for PHASE_S seconds, then HIGH_RATE per agent, then LOW again.
# Usage: sudo scripts/measure-signals.sh   (after npm run build)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CLI=(node "$ROOT/dist/cli/main.js")
QUOTA_US="${QUOTA_US:-25000}" # per 100 ms period: 0.25 core
LOW_RATE="${LOW_RATE:-500}"
HIGH_RATE="${HIGH_RATE:-6000}"
PHASE_S="${PHASE_S:-40}"
PROMETHEUS="${PROMETHEUS:-$(command -v prometheus)}"
[ "$(id -u)" = 0 ] || { echo "needs root (cgroup)" >&2; exit 1; }

WORK="$(mktemp -d)"
CG=""
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$CG" ] && rmdir "$CG" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
LINK=$(port); EM=$(port); A1M=$(port); A2M=$(port); A1D=$(port); A2D=$(port); PP=$(port)

if [ -d /sys/fs/cgroup/cpu ]; then # cgroup v1
  CG=/sys/fs/cgroup/cpu/snowtap-signals-$$
  mkdir "$CG"; echo 100000 >"$CG/cpu.cfs_period_us"; echo "$QUOTA_US" >"$CG/cpu.cfs_quota_us"
else # cgroup v2
  CG=/sys/fs/cgroup/snowtap-signals-$$
  mkdir "$CG"; echo "$QUOTA_US 100000" >"$CG/cpu.max"
fi

mkdir -p "$WORK/out"
"${CLI[@]}" enricher --listen 127.0.0.1:$LINK --metrics-listen 127.0.0.1:$EM --output-dir "$WORK/out" \
  --id enricher-0 2>"$WORK/enricher.log" &
EPID=$!; PIDS+=($EPID); echo $EPID >"$CG/cgroup.procs"
for a in 1 2; do
  m=A${a}M; d=A${a}D
  "${CLI[@]}" agent --enricher 127.0.0.1:$LINK --metrics-listen 127.0.0.1:${!m} --dnstap-tcp 127.0.0.1:${!d} \
    --id agent-$a 2>"$WORK/agent-$a.log" &
  PIDS+=($!)
done

cat >"$WORK/prometheus.yml" <<EOF
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: snowtap
    static_configs: [{targets: ['127.0.0.1:$EM', '127.0.0.1:$A1M', '127.0.0.1:$A2M']}]
EOF
"$PROMETHEUS" --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address=127.0.0.1:$PP --log.level=warn 2>"$WORK/prometheus.log" &
PIDS+=($!)
until curl -sf "http://127.0.0.1:$PP/-/ready" >/dev/null && curl -sf "http://127.0.0.1:$EM/readyz" >/dev/null; do sleep 0.3; done

q() { curl -s "http://127.0.0.1:$PP/api/v1/query" --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // "-"'; }
sample() {
  printf '%6s %-5s %9.0f %9.0f %12.0f %6.2f %6.2f %8.0f\n' "$1" "$2" \
    "$(q 'sum(rate(snowtap_agent_records_in_total[10s]))' | sed 's/^-$/0/')" \
    "$(q 'sum(rate(snowtap_enricher_records_received_total[10s]))' | sed 's/^-$/0/')" \
    "$(q 'sum(snowtap_agent_backlog_bytes)' | sed 's/^-$/0/')" \
    "$(q 'rate(snowtap_enricher_event_loop_busy_seconds_total[10s])' | sed 's/^-$/0/')" \
    "$(q 'rate(snowtap_enricher_process_cpu_seconds_total[10s])' | sed 's/^-$/0/')" \
    "$(q 'sum(rate(snowtap_agent_records_dropped_total[10s]))' | sed 's/^-$/0/')"
}
phase() { # name rate
  local P=()
  for a in 1 2; do
    d=A${a}D
    "${CLI[@]}" loadtest producer --socket 127.0.0.1:${!d} --rate "$2" --duration "$PHASE_S" --seed $a >/dev/null 2>&1 &
    P+=($!); PIDS+=($!)
  done
  local t0=$SECONDS
  while [ $((SECONDS - t0)) -lt "$PHASE_S" ]; do sleep 5; sample "$((SECONDS - START))s" "$1"; done
  wait "${P[@]}" 2>/dev/null || true
}
echo "enricher CPU limit: $QUOTA_US us per 100 ms; 2 agents; offered per phase = 2 x rate"
printf '%6s %-5s %9s %9s %12s %6s %6s %8s\n' t phase offered received backlog_B elu cpu dropped
START=$SECONDS
phase low "$LOW_RATE"
phase high "$HIGH_RATE"
phase low "$LOW_RATE"
