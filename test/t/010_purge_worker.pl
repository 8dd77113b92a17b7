# Scheduled purges: the launcher starts with the server and runs
# hipaa_guard.purge() in every database where the extension is installed,
# every hipaa_guard.purge_naptime.  It logs one line per run, skips databases
# without the extension, goes on after a purge that fails, is restarted after
# a crash, and warns when no worker slot is free.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use HipaaGuardTest qw(write_random_key start_node);

my $key_file = PostgreSQL::Test::Utils::tempdir . '/master.key';
write_random_key($key_file);

# The naptime starts long, so that only the reload below can start purges.
# The test framework turns restart_after_crash off; the crash case needs it.
my $node = start_node(
	'purge', $key_file,
	conf => q{
hipaa_guard.purge_naptime = '1h'
restart_after_crash = on
});

my $launcher_query =
  q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'hipaa_guard launcher'};

ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'hipaa_guard launcher'}
	),
	'launcher shows in pg_stat_activity');
is($node->safe_psql('postgres', 'SHOW hipaa_guard.purge_naptime'),
	'1h', 'naptime from postgresql.conf');

# clinic: rows past a 30-day policy, rows within it, and a table under a
# legal hold.  broken: a policy whose purge fails as a whole, because the
# database's default isolation level is one the procedure rejects.  plain:
# no extension.
$node->safe_psql('postgres', $_)
  for ('CREATE DATABASE clinic', 'CREATE DATABASE broken',
	'CREATE DATABASE plain');

$node->safe_psql(
	'clinic', q{
CREATE EXTENSION hipaa_guard;
CREATE TABLE visits (visit_id int PRIMARY KEY, created timestamptz NOT NULL);
INSERT INTO visits SELECT g, now() - interval '40 days' FROM generate_series(1, 5) AS g;
INSERT INTO visits SELECT g, now() - interval '1 day' FROM generate_series(6, 8) AS g;
CREATE TABLE held_visits (visit_id int PRIMARY KEY, created date NOT NULL);
INSERT INTO held_visits SELECT g, current_date - 40 FROM generate_series(1, 2) AS g;
SELECT hipaa_guard.set_retention('visits', 'created', interval '30 days');
SELECT hipaa_guard.set_retention('held_visits', 'created', interval '30 days');
SELECT hipaa_guard.legal_hold('held_visits', NULL, 'litigation hold for case 2026-17', NULL);
});

$node->safe_psql(
	'broken', q{
CREATE EXTENSION hipaa_guard;
CREATE TABLE visits (visit_id int PRIMARY KEY, created timestamptz NOT NULL);
INSERT INTO visits SELECT g, now() - interval '40 days' FROM generate_series(1, 4) AS g;
SELECT hipaa_guard.set_retention('visits', 'created', interval '30 days');
ALTER DATABASE broken SET default_transaction_isolation = 'repeatable read';
});

$node->safe_psql('plain',
	q{CREATE TABLE visits (visit_id int PRIMARY KEY, created timestamptz NOT NULL)});

is($node->safe_psql('clinic', 'SELECT count(*) FROM visits'),
	'8', 'nothing purged while the naptime is long');

# A reload with a shorter naptime must take effect without waiting out the
# hour.
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres',
	q{ALTER SYSTEM SET hipaa_guard.purge_naptime = 1; SELECT pg_reload_conf()});

ok($node->poll_query_until('clinic', 'SELECT count(*) = 3 FROM visits'),
	'expired rows purged after the reload');
is( $node->safe_psql('clinic', 'SELECT string_agg(visit_id::text, \',\' ORDER BY visit_id) FROM visits'),
	'6,7,8',
	'rows within the retention period kept');
is($node->safe_psql('clinic', 'SELECT count(*) FROM held_visits'),
	'2', 'rows under a legal hold kept');

$node->wait_for_log(
	qr/LOG:  hipaa_guard: purge in database "clinic": 5 rows purged, 2 rows held, 2 policies, 0 failed, in \d+ ms/,
	$log_offset);
pass('first run logged with its counts');

# The next run finds nothing new: one more line, with no rows purged.
my $next_offset = $node->wait_for_log(
	qr/purge in database "clinic": 0 rows purged, 2 rows held, 2 policies, 0 failed, in \d+ ms/,
	$log_offset);
pass('later run logged with no rows purged');

is( $node->safe_psql(
		'clinic',
		q{SELECT DISTINCT runner || ' ' || status FROM hipaa_guard.purge_receipts WHERE status <> 'running'}),
	'hipaa_guard purge completed',
	'receipts name the purge worker as runner');

# broken: each run ends in an error, which the server logs, and the worker
# exits with code 1; clinic is still purged in the rounds that follow.
$node->wait_for_log(
	qr/ERROR:  hipaa_guard.purge must run at isolation level read committed/,
	$log_offset);
pass('failed purge logged');
my $failure_offset = $node->wait_for_log(
	qr/background worker "hipaa_guard purge" \(PID \d+\) exited with exit code 1/,
	$log_offset);
pass('purge worker exited with code 1');
$node->wait_for_log(qr/purge in database "clinic": /, $failure_offset);
pass('clinic purged again after the failure');

my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/database "plain"/, 'database without the extension skipped silently');
unlike($log, qr/purge in database "broken"/, 'no run line for the failed purge');
unlike($log, qr/hipaa_guard launcher" \(PID \d+\) exited/,
	'launcher kept running through the failures');

$node->safe_psql('postgres',
	'ALTER DATABASE broken RESET default_transaction_isolation');
ok($node->poll_query_until('broken', 'SELECT count(*) = 0 FROM visits'),
	'purge succeeds once the database is fixed');

# A crash of the launcher: the postmaster reinitializes the server and starts
# a new launcher, which goes on purging.
my $launcher_pid = $node->safe_psql('postgres', $launcher_query);
$log_offset = -s $node->logfile;
kill 'KILL', $launcher_pid or die "could not kill the launcher (PID $launcher_pid): $!";

ok( $node->poll_query_until(
		'postgres',
		qq{SELECT count(*) = 1 FROM pg_stat_activity
			WHERE backend_type = 'hipaa_guard launcher' AND pid <> $launcher_pid}
	),
	'launcher restarted after a crash');
$node->safe_psql('clinic',
	q{INSERT INTO visits SELECT g, now() - interval '40 days' FROM generate_series(9, 10) AS g});
ok($node->poll_query_until('clinic', 'SELECT count(*) = 3 FROM visits'),
	'purging goes on after the crash');
$node->wait_for_log(qr/purge in database "clinic": 2 rows purged, 2 rows held/,
	$log_offset);
pass('run after the crash logged');

# No free worker slot: max_worker_processes counts the launcher, and the
# logical replication launcher is turned off, so the launcher's only slot is
# its own.
$node->append_conf(
	'postgresql.conf', q{
max_worker_processes = 1
max_logical_replication_workers = 0
});
$log_offset = -s $node->logfile;
$node->restart;
$node->wait_for_log(
	qr/WARNING:  out of background worker slots for hipaa_guard purges\n.*DETAIL: .*\n.*HINT:  You might need to increase "max_worker_processes"/,
	$log_offset);
pass('missing worker slot logged with a hint');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'hipaa_guard launcher'}
	),
	'launcher keeps running without a slot');

$node->stop;
done_testing();
