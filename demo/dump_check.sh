#!/usr/bin/env bash
# Count the patients' SSNs and last names in a plain-format pg_dump of the
# demo database. Run by demo/demo.sql with the cluster's PG* variables set;
# the plaintext list is read from the export itself, never from the database.
set -euo pipefail

patients_csv=${HG_SYNTHEA_DIR:?}/patients.csv
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# SSN is column 4 and LAST column 9 of Synthea's patients.csv.
awk -F, 'NR > 1 && $4 != "" { print $4 }' "$patients_csv" > "$work/ssns"
awk -F, 'NR > 1 && $9 != "" { print $9 }' "$patients_csv" > "$work/last_names"
pg_dump --format=plain --no-owner > "$work/dump.sql"

ssn_hits=$(grep -o -F -f "$work/ssns" "$work/dump.sql" | wc -l || true)
name_hits=$(grep -o -F -f "$work/last_names" "$work/dump.sql" | wc -l || true)
envelopes=$(grep -o 'hg1:' "$work/dump.sql" | wc -l || true)
printf 'pg_dump: %s bytes, %s encrypted values\n' "$(wc -c < "$work/dump.sql")" "$envelopes"
printf 'SSNs searched: %s, found in the dump: %s\n' "$(wc -l < "$work/ssns")" "$ssn_hits"
printf 'last names searched: %s, found in the dump: %s\n' "$(wc -l < "$work/last_names")" "$name_hits"
if [ "$ssn_hits" -ne 0 ] || [ "$name_hits" -ne 0 ]; then
	echo "error: plaintext found in the dump" >&2
	exit 1
fi
