#!/usr/bin/env bash
# Check that an encrypt-decrypt loop does not grow backend memory with the
# number of rows. On a throwaway cluster, each of two fresh sessions runs
#
#   SELECT count(hipaa_guard.decrypt(hipaa_guard.encrypt(g::text, 'phi')))
#   FROM generate_series(1, N) g
#
# for N = 100,000 and N = 1,000,000, then reads its own peak resident set size
# (VmHWM in /proc/self/status, through pg_read_file as superuser) and the
# bytes held by its memory contexts. Exits 1 when the peak of the 1,000,000-row
# session exceeds that of the 100,000-row session by more than
# HG_MEMORY_MARGIN_KB (default 2048 kB). A leak of 3 bytes a row would already
# add about 2.6 MB over the 900,000 extra rows.
#
# JIT is off in both sessions, because the larger row estimate of the second
# query would otherwise load LLVM and add its memory to that session only.
#
# Builds and installs the extension first, like test/run, so run it as root.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"

MARGIN_KB=${HG_MEMORY_MARGIN_KB:-2048}
SMALL_ROWS=100000
LARGE_ROWS=1000000

if ! [[ $MARGIN_KB =~ ^[0-9]+$ ]]; then
	echo "error: HG_MEMORY_MARGIN_KB must be a whole number of kB, not \"$MARGIN_KB\"" >&2
	exit 2
fi

# Run the loop over $1 rows in a fresh session and print
# "ROW_COUNT SECONDS PEAK_KB CONTEXT_BYTES".
measure()
{
	local rows=$1

	hg_as_pg psql -X -q -A -t -v ON_ERROR_STOP=1 -v rows="$rows" <<'SQL'
SET jit = off;
SELECT pg_catalog.clock_timestamp() AS started \gset
SELECT count(hipaa_guard.decrypt(hipaa_guard.encrypt(g::text, 'phi'))) AS row_count
FROM generate_series(1, :rows) g \gset
SELECT :row_count
	|| ' ' || round(extract(epoch FROM pg_catalog.clock_timestamp() - :'started'::timestamptz), 1)
	|| ' ' || substring(pg_catalog.pg_read_file('/proc/self/status') FROM 'VmHWM:\s*([0-9]+) kB')
	|| ' ' || (SELECT sum(total_bytes) FROM pg_catalog.pg_backend_memory_contexts);
SQL
}

# Read the output of measure for $1 rows into the variables named by $2.
run_measure()
{
	local rows=$1
	local -n result=$2
	local row_count seconds peak contexts

	read -r row_count seconds peak contexts <<< "$(measure "$rows")"
	if [ "$row_count" != "$rows" ]; then
		echo "error: the loop over $rows rows counted $row_count values" >&2
		exit 1
	fi
	printf '%9d rows: %6s s, peak RSS %7d kB, memory contexts %10d bytes\n' \
		"$rows" "$seconds" "$peak" "$contexts"
	result=$peak
}

cd "$HG_REPO"
hg_install_packages
hg_build_install
hg_cluster_start

hg_as_pg psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION hipaa_guard;
SELECT hipaa_guard.create_key('phi') \g /dev/null
SQL

echo "=== memory growth: encrypt and decrypt of $SMALL_ROWS and $LARGE_ROWS rows ==="
small_peak=0
large_peak=0
run_measure "$SMALL_ROWS" small_peak
run_measure "$LARGE_ROWS" large_peak

growth=$((large_peak - small_peak))
if [ "$growth" -gt "$MARGIN_KB" ]; then
	echo "error: the peak RSS grew by $growth kB from $SMALL_ROWS to $LARGE_ROWS rows, more than the $MARGIN_KB kB margin" >&2
	exit 1
fi
echo "Peak RSS grew by $growth kB from $SMALL_ROWS to $LARGE_ROWS rows (margin $MARGIN_KB kB)"
