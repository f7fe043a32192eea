#!/usr/bin/env bash
# `eoslog append DIR < batches` against `dd bs=16k conv=fsync` of the same input, pair by pair:
# the CLI append path's cost over writing the same bytes with the fewest system calls.
#
#   bash benches/cli_append.sh [pairs] [bytes]        (defaults: 7 pairs, 1 GiB)
#
# Both read the same input file (in the page cache after the first pair) and make their output
# durable before they exit: dd with `conv=fsync`, eoslog by closing the log (fsync of the
# segment and its indexes, a snapshot, the checkpoint). Each pair runs the two in alternating
# order into fresh directories on the same file system ($TMPDIR). Prints each pair's times and
# the median of `dd time / eoslog time` (throughput ratio; 1.0 = as fast as dd).
set -euo pipefail
cd "$(dirname "$0")/.."
pairs="${1:-7}"
bytes="${2:-1073741824}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet --bin eoslog --example idempotent_batches
eoslog=target/release/eoslog
target/release/examples/idempotent_batches "$bytes" 16384 > "$work/input" 2>/dev/null
size=$(stat -c %s "$work/input")
echo "input: $size bytes of 16 KiB idempotent batches; $pairs pairs"

now() { date +%s%N; }
run_dd() {
  local t0; t0=$(now)
  dd if="$work/input" of="$work/out.raw" bs=16k conv=fsync status=none
  echo $(( $(now) - t0 ))
  rm -f "$work/out.raw"
}
run_eoslog() {
  local t0; t0=$(now)
  "$eoslog" append "$work/log-0" < "$work/input" > "$work/results"
  echo $(( $(now) - t0 ))
  local lines; lines=$(wc -l < "$work/results")
  local appended; appended=$(grep -c '"status":"appended"' "$work/results" || true)
  [ "$lines" = "$appended" ] || { echo "eoslog append did not append every batch" >&2; exit 1; }
  rm -rf "$work/log-0" "$work/results"
}

sync
ratios=()
for i in $(seq 1 "$pairs"); do
  if (( i % 2 )); then d=$(run_dd); e=$(run_eoslog); else e=$(run_eoslog); d=$(run_dd); fi
  r=$(awk -v d="$d" -v e="$e" 'BEGIN { printf "%.3f", d / e }')
  ratios+=("$r")
  printf 'pair %d: dd %.3f s, eoslog append %.3f s, ratio %s\n' "$i" "$(awk -v x="$d" 'BEGIN{print x/1e9}')" "$(awk -v x="$e" 'BEGIN{print x/1e9}')" "$r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "median ratio (dd time / eoslog append time): $median"
