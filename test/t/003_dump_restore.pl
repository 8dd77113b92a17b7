# pg_dump and restore of encrypted tables with their keyring: the dump holds
# only ciphertext, and a superuser's restore with psql or pg_restore (without
# --disable-triggers) brings back the same ciphertext without encrypting it
# again, into a database that keeps working.  Also binary COPY of encrypted
# columns.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use HipaaGuardTest qw(write_random_key);

my $tempdir = PostgreSQL::Test::Utils::tempdir;

sub new_node
{
	my ($name, $key_file) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init;
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'hipaa_guard'
hipaa_guard.master_key_file = '$key_file'
});
	$node->start;
	return $node;
}

my $key_file = "$tempdir/master.key";
write_random_key($key_file);
my $source = new_node('source', $key_file);

# Fake test values; the dump must contain none of them.
my %ssn = (P001 => '987-65-4320', P002 => '987-65-4321', P003 => '987-65-4322');
my %note = (
	1 => 'Fake note alpha',
	2 => 'Fake note bravo',
	3 => 'Fake note charlie');

# patients: values bound to their row, one blind index on ssn.  notes: values
# bound to their row and encrypted under a key of their own patient.
$source->safe_psql(
	'postgres', qq{
CREATE DATABASE clinic;
\\c clinic
CREATE EXTENSION hipaa_guard;
SELECT hipaa_guard.create_key('phi');
SELECT hipaa_guard.create_key('search');
SELECT hipaa_guard.rotate_key('phi');
CREATE TABLE patients (
    patient_id text PRIMARY KEY,
    ssn hipaa_guard.encrypted_text('phi'),
    dob hipaa_guard.encrypted_date('phi'),
    ssn_index bytea
);
SELECT hipaa_guard.bind_columns('patients', 'patient_id');
SELECT hipaa_guard.add_blind_index('patients', 'ssn', 'ssn_index', 'search');
CREATE TABLE notes (
    note_id integer PRIMARY KEY,
    patient_id text NOT NULL,
    body hipaa_guard.encrypted_text('phi'),
    details hipaa_guard.encrypted_jsonb('phi'),
    scan hipaa_guard.encrypted_bytea('phi')
);
SELECT hipaa_guard.bind_columns('notes', 'patient_id', per_patient_keys => true);
INSERT INTO patients (patient_id, ssn, dob) VALUES
    ('P001', '$ssn{P001}'::text, '1970-01-02'::date),
    ('P002', '$ssn{P002}'::text, '1980-03-04'::date),
    ('P003', '$ssn{P003}'::text, '1990-05-06'::date);
INSERT INTO notes VALUES
    (1, 'P001', '$note{1}'::text, '{"code": "Z00"}'::jsonb, '\\x0102'::bytea),
    (2, 'P001', '$note{2}'::text, '{"code": "Z01"}'::jsonb, '\\x0304'::bytea),
    (3, 'P002', '$note{3}'::text, NULL, NULL);
CREATE TABLE visits (visit_id integer PRIMARY KEY, patient_id text, seen date);
INSERT INTO visits VALUES (1, 'P001', '2001-01-01'), (2, 'P002', '2001-01-01'), (3, 'P003', current_date);
SELECT hipaa_guard.set_retention('visits', 'seen', interval '6 years');
SELECT hipaa_guard.set_patient_column('visits', 'patient_id');
SELECT hipaa_guard.legal_hold('visits', 'P001', 'Case 2026-CV-0042, kept across restores');
CALL hipaa_guard.purge();
});

my %queries = (
	ciphertext => q{
SELECT patient_id, ssn::text, dob::text, encode(ssn_index, 'hex') FROM patients ORDER BY 1;
SELECT note_id, patient_id, body::text, details::text, scan::text FROM notes ORDER BY 1},
	plaintext => q{
SELECT patient_id, hipaa_guard.decrypt(ssn, patient_id), hipaa_guard.decrypt(dob, patient_id)
  FROM patients ORDER BY 1;
SELECT note_id, hipaa_guard.decrypt(body, patient_id), hipaa_guard.decrypt(details, patient_id),
       hipaa_guard.decrypt(scan, patient_id)
  FROM notes ORDER BY 1},
	keys => q{
SELECT name, kind, state, current_version, versions, encryptions
  FROM hipaa_guard.keys ORDER BY name},
	binding => q{
SELECT 'patients', patient_id, hipaa_guard.row_key(ssn), hipaa_guard.key_name(ssn)
  FROM patients
UNION ALL
SELECT 'notes', patient_id, hipaa_guard.row_key(body), hipaa_guard.key_name(body)
  FROM notes ORDER BY 1, 2, 3},
	retention => q{
SELECT table_name, age_column, keep, action, patient_column FROM hipaa_guard.retention_policies;
SELECT hold_id, table_name, patient, reason, active FROM hipaa_guard.legal_holds;
SELECT receipt_id, table_name, rows_purged, rows_held, encode(keys_digest, 'hex'), status
  FROM hipaa_guard.purge_receipts;
SELECT change_id, change, table_name FROM hipaa_guard.retention_log ORDER BY 1;
SELECT visit_id FROM visits ORDER BY 1},);

my %expected;
for my $name (sort keys %queries)
{
	$expected{$name} = $source->safe_psql('clinic', $queries{$name});
}
like(
	$expected{plaintext},
	qr/^P001\|987-65-4320\|1970-01-02$/m,
	'source: patient values decrypt');
like(
	$expected{plaintext},
	qr/^1\|Fake note alpha\|\{"code": "Z00"\}\|\\x0102$/m,
	'source: note values decrypt');
like(
	$expected{binding},
	qr/^notes\|P001\|P001\|patient:P001$/m,
	'source: notes under per-patient key');
like(
	$expected{binding},
	qr/^patients\|P002\|P002\|phi$/m,
	'source: patients bound to row');
like(
	$expected{retention},
	qr/^1\|public\.visits\|1\|1\|[0-9a-f]{64}\|completed$/m,
	'source: purge receipt');

# Binary COPY carries the envelope as it is, in both directions.
my $binary_file = "$tempdir/notes.bin";
$source->safe_psql(
	'clinic', qq{
COPY notes TO '$binary_file' (FORMAT binary);
CREATE TABLE notes_copy (LIKE notes);
COPY notes_copy FROM '$binary_file' (FORMAT binary);
});
is( $source->safe_psql(
		'clinic',
		'SELECT note_id, body::text, details::text, scan::text FROM notes_copy ORDER BY 1'
	),
	$source->safe_psql(
		'clinic',
		'SELECT note_id, body::text, details::text, scan::text FROM notes ORDER BY 1'
	),
	'binary COPY: ciphertext round-trips');
is( $source->safe_psql(
		'clinic',
		'SELECT count(*) FROM notes_copy WHERE hipaa_guard.decrypt(body, patient_id) IS NOT NULL'
	),
	'3',
	'binary COPY: values decrypt');
$source->safe_psql('clinic', 'DROP TABLE notes_copy');

my $plain_dump = "$tempdir/clinic.sql";
my $custom_dump = "$tempdir/clinic.dump";
$source->command_ok([ 'pg_dump', '-d', $source->connstr('clinic'), '-f', $plain_dump ],
	'pg_dump plain');
$source->command_ok(
	[ 'pg_dump', '-Fc', '-d', $source->connstr('clinic'), '-f', $custom_dump ],
	'pg_dump custom');

my $dump_text = slurp_file($plain_dump);
for my $value (sort(values %ssn), sort(values %note))
{
	my $count = () = $dump_text =~ /\Q$value\E/g;
	is($count, 0, "plain dump: no plaintext $value");
}
like($dump_text, qr/hg1:/, 'plain dump: contains envelopes');

my $target = new_node('target', $key_file);

# Restore each format into a fresh database on the source cluster and on a
# second cluster that reads the same master key.
my @restores = (
	[ $source, 'restored_plain', 'plain' ],
	[ $source, 'restored_custom', 'custom' ],
	[ $target, 'restored_plain', 'plain' ],
	[ $target, 'restored_custom', 'custom' ],);
for my $restore (@restores)
{
	my ($node, $dbname, $format) = @$restore;
	my $case = $node->name . " $format";

	$node->safe_psql('postgres', "CREATE DATABASE $dbname");
	if ($format eq 'plain')
	{
		$node->command_ok(
			[
				'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d',
				$node->connstr($dbname), '-f', $plain_dump
			],
			"$case: psql restore");
	}
	else
	{
		$node->command_ok(
			[
				'pg_restore', '--exit-on-error', '-d',
				$node->connstr($dbname), $custom_dump
			],
			"$case: pg_restore");
	}

	for my $name (sort keys %queries)
	{
		is($node->safe_psql($dbname, $queries{$name}),
			$expected{$name}, "$case: $name as before");
	}
	is( $node->safe_psql(
			$dbname,
			"SELECT patient_id FROM patients
              WHERE ssn_index = hipaa_guard.blind_index('$ssn{P002}', 'search')"),
		'P002',
		"$case: blind index search");

	# A new patient gets a key of its own, which needs the restored sequence.
	$node->safe_psql(
		$dbname, q{
INSERT INTO patients (patient_id, ssn, dob) VALUES ('P004', '987-65-4323'::text, '2000-07-08'::date);
INSERT INTO notes VALUES (4, 'P004', 'Fake note delta'::text, '{"code": "Z02"}'::jsonb, '\x0506'::bytea);
});
	is( $node->safe_psql(
			$dbname,
			q{SELECT hipaa_guard.decrypt(p.ssn, p.patient_id) || ' ' || hipaa_guard.decrypt(n.body, n.patient_id)
                  || ' ' || hipaa_guard.key_name(n.body)
                FROM patients p JOIN notes n USING (patient_id)
               WHERE patient_id = 'P004'}),
		'987-65-4323 Fake note delta patient:P004',
		"$case: new rows encrypt and decrypt");
	is( $node->safe_psql(
			$dbname,
			q{SELECT patient_id FROM patients
               WHERE ssn_index = hipaa_guard.blind_index('987-65-4323', 'search')}),
		'P004',
		"$case: new row indexed");
}

$source->stop;
$target->stop;

done_testing();
