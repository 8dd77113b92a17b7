# The sealing worker of the audit trail: it loses no record when it is
# terminated and restarted, or when the server stops with -m immediate while
# sessions queue records; a durable event from a rolled-back transaction is
# still sealed; and the high-water file reveals a trail that a superuser has
# emptied, after which the sealer stops rather than erase that evidence.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use HipaaGuardTest qw(write_random_key start_node);

my $key_file = PostgreSQL::Test::Utils::tempdir . '/master.key';
write_random_key($key_file);
my $node = start_node(
	'sealer', $key_file,
	conf => q{
max_worker_processes = 16
hipaa_guard.audit_seal_interval = '100ms'
# Leaves asynchronous commits unflushed long enough to see audit_digest()
# flush them.
wal_writer_delay = '10s'
});

$node->safe_psql('postgres', 'CREATE EXTENSION hipaa_guard');

my $sealer_query =
  q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'hipaa_guard sealer' AND datname = 'postgres'};

# Wait until nothing is queued and at least $count records are sealed.
sub wait_sealed
{
	my ($count) = @_;
	return $node->poll_query_until('postgres',
		"SELECT queued_in_table = 0 AND queued_in_memory = 0 AND sealed_records >= $count"
		  . ' FROM hipaa_guard.audit_status()');
}

sub verify_chain
{
	return $node->safe_psql('postgres',
		q{SELECT CASE WHEN ok THEN 'ok' ELSE 'failed: ' || reason END
            FROM hipaa_guard.verify_audit_chain()});
}

sub queue_rows
{
	my ($label, $count) = @_;
	$node->safe_psql('postgres', qq{
INSERT INTO hipaa_guard.audit_queue (logged_at, kind, detail)
SELECT now(), 'write', '$label ' || n FROM generate_series(1, $count) AS n});
	return;
}

# --- A durable event survives the rollback of its transaction.
$node->safe_psql('postgres', q{
BEGIN;
SELECT hipaa_guard.audit_note('note of a rolled-back transaction');
ROLLBACK;
});
ok(wait_sealed(1), 'durable event sealed');
is( $node->safe_psql('postgres',
		q{SELECT kind || ' ' || command || ' ' || status FROM hipaa_guard.audit_trail
           WHERE detail = 'note of a rolled-back transaction'}),
	'config NOTE aborted',
	'rolled-back note sealed with status aborted');
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($sealer_query) s"),
	'one sealer in pg_stat_activity');

# --- pg_terminate_backend(): the sealer exits, another one takes over, and
# records queued meanwhile, in the table and in memory, are all sealed.
queue_rows('before terminate', 100);
ok(wait_sealed(101), 'records sealed before terminate');
my $old_pid = $node->safe_psql('postgres', $sealer_query);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old_pid)");
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $old_pid"),
	'terminated sealer exited');
queue_rows('after terminate', 100);
$node->safe_psql('postgres', q{SELECT hipaa_guard.audit_note('note while no sealer runs')});
ok(wait_sealed(202), 'records queued without a sealer are sealed');
my $new_pid = $node->safe_psql('postgres', $sealer_query);
isnt($new_pid, $old_pid, 'a new sealer runs');
is( $node->safe_psql('postgres',
		q{SELECT count(DISTINCT detail) || ' ' || (max(seq) - min(seq) + 1) || ' ' || count(*)
            FROM hipaa_guard.audit_trail}),
	'202 202 202',
	'every record sealed once, with contiguous seqs');
is(verify_chain(), 'ok', 'chain verifies after the restart');

# --- pg_ctl stop -m immediate while 4 sessions queue committed records.
# Each transaction also writes its id into committed_ids, so afterwards
# every id there must be in the trail.
$node->safe_psql('postgres', 'CREATE TABLE committed_ids (id bigserial PRIMARY KEY)');
my $script = PostgreSQL::Test::Utils::tempdir . '/queue.sql';
PostgreSQL::Test::Utils::append_to_file(
	$script, q{
WITH i AS (INSERT INTO committed_ids DEFAULT VALUES RETURNING id)
INSERT INTO hipaa_guard.audit_queue (logged_at, kind, detail)
SELECT now(), 'write', 'crash ' || id FROM i;
});
my ($stdout, $stderr) = ('', '');
my $pgbench = IPC::Run::start(
	[
		'pgbench', '-n', '-c', '4', '-j', '2', '-T', '60', '-f', $script,
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$stdout, '2>', \$stderr);
ok( $node->poll_query_until('postgres', 'SELECT count(*) >= 2000 FROM committed_ids'),
	'sessions are queueing records');
$node->stop('immediate');
$pgbench->finish;
$node->start;

my $committed = $node->safe_psql('postgres', 'SELECT count(*) FROM committed_ids');
ok(wait_sealed(202 + $committed), 'queue drained after the restart');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM committed_ids c
           WHERE NOT EXISTS (SELECT 1 FROM hipaa_guard.audit_trail l WHERE l.detail = 'crash ' || c.id)}
	),
	'0',
	"all $committed committed records sealed after an immediate stop");
is( $node->safe_psql('postgres',
		q{SELECT count(*) = count(DISTINCT detail) FROM hipaa_guard.audit_trail}),
	't', 'no record sealed twice');
is(verify_chain(), 'ok', 'chain verifies after the immediate stop');

# --- audit_digest() flushes the WAL before it returns.  The sealer commits
# blocks without waiting for the flush, and a digest of a block that a crash
# then undid would fail verification.  An asynchronous commit leaves WAL
# unflushed here, which the call must flush.
$node->safe_psql('postgres', 'CREATE TABLE unflushed (n int)');
is( $node->safe_psql('postgres', q{
SET synchronous_commit = off;
INSERT INTO unflushed VALUES (1);
SELECT pg_current_wal_insert_lsn() AS before \gset
SELECT pg_current_wal_flush_lsn() < :'before';
SELECT count(*) FROM hipaa_guard.audit_digest();
SELECT pg_current_wal_flush_lsn() >= :'before';
}),
	"t\n1\nt",
	'audit_digest() flushes pending WAL');

# --- The high-water file reveals an emptied trail.  First a DELETE of both
# tables with the triggers off, rolled back; then a TRUNCATE, committed.
my $head_file = $node->data_dir . '/hipaa_guard/audit_head.'
  . $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'postgres'});
ok(-f $head_file, 'high-water file exists');
like(
	$node->safe_psql('postgres', q{
BEGIN;
ALTER TABLE hipaa_guard.audit_log DISABLE TRIGGER audit_log_guard;
ALTER TABLE hipaa_guard.audit_block DISABLE TRIGGER audit_block_guard;
DELETE FROM hipaa_guard.audit_log;
DELETE FROM hipaa_guard.audit_block;
SELECT CASE WHEN ok THEN 'ok' ELSE 'failed: ' || reason END FROM hipaa_guard.verify_audit_chain();
ROLLBACK;
}),
	qr/^failed: the trail has no blocks, but the high-water file names block \d+: sealed blocks were removed$/,
	'deleted trail detected');
is(verify_chain(), 'ok', 'chain verifies after the rollback');

$node->safe_psql('postgres', q{
ALTER TABLE hipaa_guard.audit_log DISABLE TRIGGER audit_log_truncate_guard;
ALTER TABLE hipaa_guard.audit_block DISABLE TRIGGER audit_block_truncate_guard;
TRUNCATE hipaa_guard.audit_log, hipaa_guard.audit_block;
ALTER TABLE hipaa_guard.audit_log ENABLE ALWAYS TRIGGER audit_log_truncate_guard;
ALTER TABLE hipaa_guard.audit_block ENABLE ALWAYS TRIGGER audit_block_truncate_guard;
});
like(verify_chain(), qr/^failed: the trail has no blocks, but the high-water file names block/,
	'truncated trail detected');

# The sealer does not start a new chain over the evidence: new records stay
# queued, and the verdict stays.
queue_rows('after truncate', 3);
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM pg_stat_activity
           WHERE backend_type = 'hipaa_guard sealer' AND datname = 'postgres'}),
	'sealer still runs');
sleep(1);
is( $node->safe_psql('postgres',
		q{SELECT queued_in_table || ' ' || sealed_blocks FROM hipaa_guard.audit_status()}),
	'3 0', 'records stay queued while the trail is cut');
like(verify_chain(), qr/^failed: the trail has no blocks/, 'cut still detected');
ok( $node->log_contains(
		'the audit trail of database "postgres" ends before its high-water mark'),
	'sealer logs why it stopped');

$node->stop;
done_testing();
