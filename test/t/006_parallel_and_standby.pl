# Decryption in parallel workers, which inherit the master key from the
# postmaster and read the keyring on their own, and on a streaming standby,
# which can decrypt but must not encrypt, because only the primary can
# record a key's nonce budget.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use HipaaGuardTest qw(write_random_key);

my $rows = 50000;
my $tempdir = PostgreSQL::Test::Utils::tempdir;

my $key_file = "$tempdir/master.key";
write_random_key($key_file);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'hipaa_guard'
hipaa_guard.master_key_file = '$key_file'
});
$primary->start;

# Half the values start with "x", half with "y".
$primary->safe_psql(
	'postgres', qq{
CREATE EXTENSION hipaa_guard;
SELECT hipaa_guard.create_key('phi');
CREATE TABLE t (id integer PRIMARY KEY, v hipaa_guard.encrypted_text('phi'));
INSERT INTO t SELECT i, (CASE WHEN i % 2 = 0 THEN 'x' ELSE 'y' END || i)::text
  FROM generate_series(1, $rows) AS i;
VACUUM ANALYZE t;
});

my $force_parallel = q{
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
};
my $count_x =
  q{SELECT count(*) FROM t WHERE hipaa_guard.decrypt(v) LIKE 'x%'};

my $plan = $primary->safe_psql('postgres', "$force_parallel EXPLAIN $count_x");
like($plan, qr/Gather/, 'parallel: plan has Gather');
like($plan, qr/Workers Planned: 2/, 'parallel: 2 workers planned');

is($primary->safe_psql('postgres', "$force_parallel $count_x"),
	$rows / 2, 'parallel: count of decrypted matches');

my $analyzed = $primary->safe_psql('postgres',
	"$force_parallel EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $count_x");
note "parallel plan:\n$analyzed";
like($analyzed, qr/Workers Launched: [1-9]/, 'parallel: workers launched');
like(
	$analyzed,
	qr/Parallel Seq Scan on t .*\n\s+Filter: \(hipaa_guard\.decrypt\(v\)/,
	'parallel: decrypt runs in the parallel scan');

# decrypt() calls made in parallel workers count against the leader's
# statement in the audit trail, with the patients of per-patient keys.
$primary->safe_psql(
	'postgres', q{
SELECT hipaa_guard.enable_audit('t');
CREATE TABLE visits (id integer PRIMARY KEY, patient text, note hipaa_guard.encrypted_text('phi'));
SELECT hipaa_guard.bind_columns('visits', 'patient', per_patient_keys => true);
INSERT INTO visits SELECT i, 'pt-' || (i % 3), ('note ' || i)::text FROM generate_series(1, 30000) AS i;
VACUUM ANALYZE visits;
SELECT hipaa_guard.enable_audit('visits');
});

# The last read record of a table, once everything queued is sealed.
sub last_read
{
	my ($table) = @_;
	$primary->poll_query_until('postgres',
		q{SELECT queued_in_memory = 0 AND queued_in_table = 0 FROM hipaa_guard.audit_status()})
	  or die "the audit records were not sealed";
	return $primary->safe_psql('postgres',
		"SELECT decrypts, ARRAY(SELECT unnest(patients) ORDER BY 1) FROM hipaa_guard.audit_trail
		  WHERE kind = 'read' AND relation = 'public.$table' ORDER BY seq DESC LIMIT 1");
}

$analyzed = $primary->safe_psql('postgres',
	"$force_parallel EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $count_x");
like($analyzed, qr/Workers Launched: [1-9]/, 'audit: workers launched');
is(last_read('t'), "$rows|{}", 'audit: every decrypt counted, workers included');

my $count_visits =
  q{SELECT count(*) FROM visits WHERE hipaa_guard.decrypt(note) LIKE 'note 1%'};
$analyzed = $primary->safe_psql('postgres',
	"$force_parallel EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $count_visits");
like($analyzed, qr/Workers Launched: [1-9]/, 'audit: workers launched on visits');
is(last_read('visits'), '30000|{pt-0,pt-1,pt-2}',
	'audit: patients of per-patient keys noted by workers');

# A statement that reads no audited table and leaves every decrypt() call
# to its workers still gets its record.
$primary->safe_psql('postgres',
	q{CREATE TABLE unaudited AS SELECT id, v FROM t; VACUUM ANALYZE unaudited});
my $count_unaudited =
  q{SELECT count(*) FROM unaudited WHERE hipaa_guard.decrypt(v) LIKE 'x%'};
$analyzed = $primary->safe_psql('postgres',
	"$force_parallel SET parallel_leader_participation = off;
	 EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $count_unaudited");
like($analyzed, qr/Workers Launched: [1-9]/, 'audit: workers launched, leader not participating');
last_read('t');
is( $primary->safe_psql(
		'postgres', q{SELECT decrypts FROM hipaa_guard.audit_trail
		  WHERE kind = 'read' AND relation IS NULL AND statement LIKE '%unaudited%'
		  ORDER BY seq DESC LIMIT 1}),
	$rows,
	'audit: decrypt() calls of workers alone are recorded');

# Workers that use more per-patient keys than the leader's slot holds: the
# calls are all counted, and the record says that patients are missing.
$primary->safe_psql(
	'postgres', q{
CREATE TABLE many_visits (id integer PRIMARY KEY, patient text, note hipaa_guard.encrypted_text('phi'));
SELECT hipaa_guard.bind_columns('many_visits', 'patient', per_patient_keys => true);
INSERT INTO many_visits SELECT i, 'pt-' || (i % 400), ('note ' || i)::text FROM generate_series(1, 40000) AS i;
VACUUM ANALYZE many_visits;
SELECT hipaa_guard.enable_audit('many_visits');
});
my $count_many =
  q{SELECT count(*) FROM many_visits WHERE hipaa_guard.decrypt(note) LIKE 'note 1%'};
$analyzed = $primary->safe_psql('postgres',
	"$force_parallel EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $count_many");
like($analyzed, qr/Workers Launched: [1-9]/, 'audit: workers launched on many_visits');
last_read('many_visits');
is( $primary->safe_psql(
		'postgres', q{SELECT decrypts, detail FROM hipaa_guard.audit_trail
		  WHERE kind = 'read' AND relation = 'public.many_visits' ORDER BY seq DESC LIMIT 1}),
	'40000|patients of decrypt() calls in parallel workers may be missing',
	'audit: the record says that patients may be missing');

# The standby gets the keyring and the values through WAL, and reads the
# same master key file.
$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;

$primary->safe_psql(
	'postgres', q{
SELECT hipaa_guard.rotate_key('phi');
INSERT INTO t VALUES (0, 'x after rotation'::text);
});
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'standby: in recovery');

# A standby cannot write the trail: by default it refuses what the audit
# would record, reads of audited tables and decrypt() calls.
my ($stdout, $stderr);
foreach my $case (
	[ 'SELECT count(*) FROM t', 'standby: audited read refused' ],
	[ 'COPY t TO STDOUT', 'standby: COPY of an audited table refused, also for a superuser' ])
{
	$standby->psql(
		'postgres', $case->[0],
		stderr => \$stderr,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like(
		$stderr,
		qr/ERROR:  55000: cannot read audited table public\.t on a standby/,
		$case->[1]);
}
$primary->safe_psql('postgres',
	q{CREATE TABLE plain_values AS SELECT id, v FROM t WHERE id <= 10});
$primary->wait_for_catchup($standby);
$standby->psql(
	'postgres', 'SELECT hipaa_guard.decrypt(v) FROM plain_values',
	stderr => \$stderr,
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like(
	$stderr,
	qr/ERROR:  55000: cannot decrypt on a standby/,
	'standby: decrypt refused');
$standby->psql(
	'postgres', 'SET hipaa_guard.standby_reads = unrecorded',
	stderr => \$stderr);
like(
	$stderr,
	qr/cannot be changed now/,
	'standby: a session cannot lift the refusal');

# With hipaa_guard.standby_reads = unrecorded they run, and a standby that
# reads audited tables many times never waits for a sealer it cannot have.
$standby->append_conf('postgresql.conf', "hipaa_guard.standby_reads = unrecorded\n");
$standby->reload;
is( $standby->safe_psql(
		'postgres', q{
DO $$
BEGIN
    FOR i IN 1 .. 20000 LOOP
        PERFORM count(*) FROM t WHERE id = i;
    END LOOP;
END
$$;
SELECT 'done';}),
	'done',
	'standby: 20,000 audited reads do not wait for a sealer');
is($standby->safe_psql('postgres', $count_x),
	$rows / 2 + 1, 'standby: values decrypt');
is( $standby->safe_psql(
		'postgres', 'SELECT hipaa_guard.decrypt(v) FROM t WHERE id = 0'),
	'x after rotation',
	'standby: value under new version decrypts');

$standby->psql(
	'postgres',
	"SELECT hipaa_guard.encrypt('standby probe'::text, 'phi')",
	stdout => \$stdout,
	stderr => \$stderr,
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like(
	$stderr,
	qr/ERROR:  25006: cannot change the hipaa_guard keyring during recovery/,
	'standby: encrypt fails');

is( $primary->safe_psql(
		'postgres',
		"SELECT hipaa_guard.decrypt(hipaa_guard.encrypt('primary value'::text, 'phi'))"
	),
	'primary value',
	'primary: encrypt still works');

# A key destroyed on the primary must be gone on the standby too, also for
# a standby session that already holds the key in its cache.
$primary->safe_psql(
	'postgres', q{
SELECT hipaa_guard.create_key('doomed');
CREATE TABLE d (id integer PRIMARY KEY, v hipaa_guard.encrypted_text('doomed'));
INSERT INTO d VALUES (1, 'fake doomed value'::text);
});
$primary->wait_for_catchup($standby);
my $reader = $standby->background_psql(
	'postgres',
	on_error_stop => 0,
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
is($reader->query('SELECT hipaa_guard.decrypt(v) FROM d'),
	'fake doomed value', 'standby: key readable before destroy');

$primary->safe_psql('postgres', "SELECT hipaa_guard.destroy_key('doomed')");
$primary->wait_for_catchup($standby);

$standby->psql(
	'postgres',
	'SELECT hipaa_guard.decrypt(v) FROM d',
	stdout => \$stdout,
	stderr => \$stderr,
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like(
	$stderr,
	qr/ERROR:  55000: data key "doomed" has been destroyed/,
	'standby: destroyed key fails in new session');
$reader->query('SELECT hipaa_guard.decrypt(v) FROM d');
like(
	$reader->{stderr},
	qr/ERROR:  55000: data key "doomed" has been destroyed/,
	'standby: destroyed key fails in session that cached it');
$reader->quit;

$standby->stop;
$primary->stop;

done_testing();
