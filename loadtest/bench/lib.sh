# Helpers the benchmark scripts share; sourced, never run. Only talks to 127.0.0.1.
# shellcheck shell=bash

CH=${WEFT_CLICKHOUSE_URL:-http://127.0.0.1:8123}

ch() { curl -sf "$CH/" --data-binary "$1"; }                 # ch SQL: one ClickHouse statement
event() { ch "SELECT value FROM system.events WHERE event = '$1'" || echo 0; }
cpu() { # cpu PID: utime+stime in seconds (CLK_TCK 100) of a pid, 0 if gone
    if [ -r "/proc/$1/stat" ]; then awk '{printf "%.2f", ($14+$15)/100}' "/proc/$1/stat"; else echo 0; fi
}
now() { date +%s.%N; }
pct() { # pct FILE Q: the Q-quantile (0..1) of FILE's seconds, one a line, in milliseconds
    sort -n "$1" | awk -v q="$2" '{a[NR]=$1} END {i=int(q*NR+0.999999); if (i<1) i=1; printf "%.1f", a[i]*1000}'
}
