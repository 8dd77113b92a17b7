# The audit under load, crash, rollback, dump and restore, and without the
# preloaded library: a transaction that overfills the queue waits and loses
# no record; 8 clients reading and writing for 30 seconds leave
# exactly one record per operation; a crash under 4 writers loses no record
# of a committed write, nor, with hipaa_guard.audit_durable_reads, of a read
# of a committed write; a rolled-back read stays recorded; a dumped and
# restored trail still verifies; and without the library audited tables
# refuse reads and writes instead of going unrecorded.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use HipaaGuardTest qw(write_random_key start_node);

my $tempdir = PostgreSQL::Test::Utils::tempdir;
my $key_file = "$tempdir/master.key";
write_random_key($key_file);
# A queue of 64 kB, the smallest, which the load below fills, so that the
# clients also wait for the sealer.  The default holds far more.
my $node = start_node('audit', $key_file,
	conf => "hipaa_guard.audit_queue_size = '64kB'\n");

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION hipaa_guard;
CREATE ROLE app LOGIN IN ROLE hipaa_clinician;
CREATE TABLE items (id bigserial PRIMARY KEY, patient text NOT NULL);
CREATE TABLE burst (id bigserial PRIMARY KEY, patient text NOT NULL);
GRANT SELECT, INSERT ON items, burst TO app;
GRANT USAGE ON SEQUENCE items_id_seq, burst_id_seq TO app;
SELECT hipaa_guard.enable_audit('items');
SELECT hipaa_guard.enable_audit('burst');
});

# Wait until nothing waits to be sealed.
sub wait_sealed
{
	my ($db) = @_;
	$node->poll_query_until($db // 'postgres',
		'SELECT queued_in_memory = 0 AND queued_in_table = 0 FROM hipaa_guard.audit_status()')
	  or die "the audit backlog did not drain";
	return;
}

sub verified
{
	my ($db) = @_;
	return $node->safe_psql($db // 'postgres',
		'SELECT ok::text || coalesce(\' \' || reason, \'\') FROM hipaa_guard.verify_audit_chain()');
}

# A read in a transaction that rolls back is recorded, marked aborted.
$node->safe_psql('postgres',
	q{BEGIN; SET LOCAL ROLE app; SELECT count(*) FROM items; ROLLBACK;});
wait_sealed();
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM hipaa_guard.audit_trail
		 WHERE kind = 'read' AND relation = 'public.items' AND status = 'aborted'}),
	'1',
	'a read whose transaction rolled back is recorded as aborted');

# One transaction of 2,000 reads queues more at its commit than the 64 kB
# queue holds: the session waits for the sealer to make room, and no record
# is dropped.
$node->safe_psql('postgres', q{
SET application_name = 'burst reader';
SET ROLE app;
DO $$BEGIN FOR i IN 1..2000 LOOP PERFORM count(*) FROM items WHERE id = i; END LOOP; END$$;
});
wait_sealed();
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM hipaa_guard.audit_trail
		 WHERE application = 'burst reader' AND kind = 'read' AND relation = 'public.items'}),
	'2000',
	'overfilled queue loses no record');
ok( $node->safe_psql('postgres', 'SELECT queue_full_waits > 0 FROM hipaa_guard.audit_status()')
	  eq 't',
	'the session waited for queue space');

# 8 clients, each transaction one INSERT and one SELECT, for 30 seconds.
my $script = "$tempdir/rw.sql";
PostgreSQL::Test::Utils::append_to_file($script, q{
INSERT INTO items (patient) VALUES ('p' || :client_id);
SELECT patient FROM items WHERE id = currval('items_id_seq');
});
my ($out, $err) = ('', '');
IPC::Run::run(
	[ 'pgbench', '-n', '-c', '8', '-j', '2', '-T', '30', '-U', 'app', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err)
  or die "pgbench failed: $err";
my ($transactions) = $out =~ /number of transactions actually processed: (\d+)/;
ok($transactions > 0, "8 clients ran $transactions transactions");
like($out, qr/number of failed transactions: 0/, 'no transaction failed');
wait_sealed();
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FILTER (WHERE kind = 'write' AND command = 'INSERT') || ' '
		 || count(*) FILTER (WHERE kind = 'read' AND command = 'SELECT' AND rows = 1)
		 FROM hipaa_guard.audit_trail WHERE relation = 'public.items' AND actor = 'app'}),
	"$transactions $transactions",
	'one write and one read record per transaction of the 8 clients');
is($node->safe_psql('postgres', 'SELECT count(*) FROM items'),
	$transactions, 'each transaction inserted one row');
is(verified(), 'true', 'the chain verifies after the concurrent run');
is( $node->safe_psql(
		'postgres', q{SELECT bool_and(pg_column_compression(records) = 'lz4')
		  FROM hipaa_guard.audit_log WHERE last_seq - first_seq >= 10}),
	't', 'full rows of packed records are stored compressed');

# A crash while 4 clients insert: every committed row has its record.
my $burst = "$tempdir/burst.sql";
PostgreSQL::Test::Utils::append_to_file($burst,
	q{INSERT INTO burst (patient) VALUES ('p' || :client_id);});
my $pgbench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', '60', '-U', 'app', '-f', $burst,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);
$node->poll_query_until('postgres', 'SELECT count(*) > 2000 FROM burst')
  or die 'the writers did not start';
$node->stop('immediate');
$pgbench->finish;
$node->start;
wait_sealed();
my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM burst');
ok($rows > 2000, "$rows rows were committed before the crash");
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM burst AS b WHERE NOT EXISTS
		 (SELECT FROM hipaa_guard.audit_trail AS l WHERE l.relation = 'public.burst'
		    AND l.command = 'INSERT' AND l.row_key = b.id::text)}),
	'0',
	'every row committed before the crash has its write record');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM hipaa_guard.audit_trail
		 WHERE relation = 'public.burst' AND command = 'INSERT'}),
	$rows,
	'and no write record lacks its row');
is(verified(), 'true', 'the chain verifies after the crash');

# Under hipaa_guard.audit_durable_reads, reads committed just before a crash
# keep their records.  500 reads take well under a seal interval, so without
# the setting most of their records would still be in shared memory.
$node->safe_psql('postgres', q{
CREATE TABLE durable_items (id int PRIMARY KEY);
INSERT INTO durable_items VALUES (1);
GRANT SELECT ON durable_items TO app;
SELECT hipaa_guard.enable_audit('durable_items');
ALTER ROLE app SET hipaa_guard.audit_durable_reads = on;
});
wait_sealed();
my $reads = "$tempdir/reads.sql";
PostgreSQL::Test::Utils::append_to_file($reads, q{SELECT id FROM durable_items WHERE id = 1;});
IPC::Run::run(
	[ 'pgbench', '-n', '-c', '2', '-j', '2', '-t', '250', '-U', 'app', '-f', $reads,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err)
  or die "pgbench failed: $err";
$node->stop('immediate');
$node->start;
wait_sealed();
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM hipaa_guard.audit_trail
		 WHERE relation = 'public.durable_items' AND kind = 'read' AND status = 'committed'}),
	'500',
	'durable reads survive a crash');
$node->safe_psql('postgres', 'ALTER ROLE app RESET hipaa_guard.audit_durable_reads');
is(verified(), 'true', 'chain verifies after second crash');

# The independent verifier checks an export against the digest, and finds
# an edit that a superuser made with the guard switched off.
my $records_csv = "$tempdir/records.csv";
my $blocks_csv = "$tempdir/blocks.csv";
sub export_trail
{
	# Nothing else runs now, so the two files agree once all is sealed.
	wait_sealed();
	$node->safe_psql('postgres',
		"COPY (SELECT * FROM hipaa_guard.audit_export ORDER BY seq) TO '$records_csv' WITH (FORMAT csv, HEADER)");
	$node->safe_psql('postgres',
		"COPY (SELECT * FROM hipaa_guard.audit_block_export ORDER BY block) TO '$blocks_csv' WITH (FORMAT csv, HEADER)");
	return;
}
my $verifier = "$FindBin::RealBin/../audit-verify";
my $export_digest = $node->safe_psql('postgres', 'SELECT digest FROM hipaa_guard.audit_digest()');
export_trail();
my ($vout, $verr) = ('', '');
IPC::Run::run([ $verifier, '--records', $records_csv, '--blocks', $blocks_csv,
	'--digest', $export_digest ], '>', \$vout, '2>', \$verr);
like($vout, qr/^ok: \d+ blocks, \d+ records/, 'the independent verifier accepts the export');
# The edit rewrites the stored bytes with test/lib/audit_tamper.sql.
my $tamper_sql = PostgreSQL::Test::Utils::slurp_file("$FindBin::RealBin/../lib/audit_tamper.sql");
$node->safe_psql('postgres', $tamper_sql . q{
SELECT actor FROM hipaa_guard.audit_trail WHERE seq = 3 \gset
SELECT pg_temp.tamper_edit(3, 11, 'tampered:' || :'actor');
});
like($node->safe_psql('postgres', 'SELECT actor FROM hipaa_guard.audit_trail WHERE seq = 3'),
	qr/^tampered:/, 'a superuser edited the actor of record 3');
export_trail();
($vout, $verr) = ('', '');
IPC::Run::run([ $verifier, '--records', $records_csv, '--blocks', $blocks_csv,
	'--digest', $export_digest ], '>', \$vout, '2>', \$verr);
like($vout, qr/^FAIL at (block|seq) /, 'and rejects the export of an edited trail');
is($node->safe_psql('postgres', 'SELECT ok FROM hipaa_guard.verify_audit_chain()'),
	'f', 'as verify_audit_chain() does');
$node->safe_psql('postgres', $tamper_sql . q{
SELECT substr(actor, 10) AS actor FROM hipaa_guard.audit_trail WHERE seq = 3 \gset
SELECT pg_temp.tamper_edit(3, 11, :'actor');
});
is(verified(), 'true', 'the edit undone, the chain verifies again');

# Dump and restore: the trail comes back and verifies in the new database.
my $digest = $node->safe_psql('postgres', 'SELECT digest FROM hipaa_guard.audit_digest()');
my $dump = "$tempdir/audit.dump";
$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', $dump, '-h', $node->host, '-p', $node->port, 'postgres' ],
	'pg_dump of an audited database');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(
	[ 'pg_restore', '-d', 'restored', '-h', $node->host, '-p', $node->port, $dump ],
	'pg_restore without --disable-triggers');
is(verified('restored'), 'true', 'the restored chain verifies');
is( $node->safe_psql('restored',
		"SELECT ok FROM hipaa_guard.verify_audit_chain('$digest')"),
	't', 'and matches the digest taken before the dump');

# Without the preloaded library, reads of an audited table are refused.
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	'SET ROLE app; SELECT count(*) FROM items');
isnt($ret, 0, 'a read of an audited table fails without the preloaded library');
like($stderr, qr/reads of audited tables are refused because hipaa_guard is not preloaded/,
	'with a message that says why');
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SET ROLE app; INSERT INTO items (patient) VALUES ('late')});
isnt($ret, 0, 'so is a write, whose record could not be queued');
like($stderr, qr/hipaa_guard must be loaded via "shared_preload_libraries"/,
	'with the same remedy');
is($node->safe_psql('postgres', q{SELECT count(*) FROM items WHERE patient = 'late'}),
	'0', 'and the row is not there');

$node->stop;
done_testing();
