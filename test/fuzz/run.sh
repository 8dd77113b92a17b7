#!/usr/bin/env bash
# Run each libFuzzer target in test/fuzz/build for FUZZ_SECONDS seconds
# (default 60) over a fresh copy of its seed corpus in test/fuzz/corpus, so the
# committed corpus never changes. Prints executions, coverage and corpus size
# per target. A target that crashes, trips a sanitizer or fails a property
# check leaves its input in test/fuzz/build/artifacts/TARGET and its output in
# test/fuzz/build/TARGET.log, and the script exits 1.
#
# Build the targets first with "make fuzz-build"; "make fuzz" does both.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

seconds=${FUZZ_SECONDS:-60}
targets=(envelope_binary envelope_text key_text jwt)
status=0

if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
	echo "error: FUZZ_SECONDS must be a positive whole number of seconds, not \"$seconds\"" >&2
	exit 2
fi

for target in "${targets[@]}"; do
	binary=build/fuzz_$target
	work=build/work/$target
	artifacts=build/artifacts/$target
	log=build/$target.log
	options=(-max_total_time="$seconds" -timeout=10 -max_len=8192
		-print_final_stats=1 -artifact_prefix="$artifacts/")

	if [ ! -x "$binary" ]; then
		echo "error: $binary is missing; run \"make fuzz-build\" first" >&2
		exit 1
	fi
	if [ -f "$target.dict" ]; then
		options+=(-dict="$target.dict")
	fi

	rm -rf "$work" "$artifacts"
	mkdir -p "$work" "$artifacts"
	cp corpus/"$target"/* "$work"/

	echo "=== fuzz $target for $seconds s ==="
	if "./$binary" "${options[@]}" "$work" > "$log" 2>&1; then
		# The last status line reads "#RUNS DONE cov: N ft: N corp: N/SIZE ...".
		grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true
		grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb):' "$log" || true
	else
		echo "error: fuzz target $target failed; the input is in test/fuzz/$artifacts and the output in test/fuzz/$log" >&2
		grep -E 'ERROR: |runtime error|property failed|SUMMARY' "$log" | head -n 20 >&2 || true
		status=1
	fi
done

exit $status
