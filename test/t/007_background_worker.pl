# Keys in background workers: pg_cron runs jobs in background workers forked
# from the postmaster, like the extension's own workers will be, and those
# must encrypt and decrypt with the master key loaded at preload.  pg_cron
# 1.4 schedules by the minute, so the job starts within 60 seconds.
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
my $node = start_node(
	'worker', $key_file,
	libraries => 'hipaa_guard, pg_cron',
	conf => q{
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
});

$node->safe_psql('postgres', q{
CREATE EXTENSION hipaa_guard;
CREATE EXTENSION pg_cron;
SELECT hipaa_guard.create_key('phi');
CREATE TABLE source_values (id int, v hipaa_guard.encrypted_text('phi'));
INSERT INTO source_values VALUES (1, 'read by a worker'::text);
CREATE TABLE worker_results (decrypted text, encrypted hipaa_guard.encrypted_text, backend_type text);
});

is($node->safe_psql('postgres', 'SHOW cron.use_background_workers'),
	'on', 'pg_cron runs jobs in background workers');

$node->safe_psql('postgres', q{
SELECT cron.schedule('hipaa_guard_keys', '* * * * *', $$
    INSERT INTO worker_results
    SELECT hipaa_guard.decrypt(v), hipaa_guard.encrypt('written by a worker', 'phi'), backend_type
      FROM source_values, pg_stat_activity WHERE pid = pg_backend_pid()
$$);
});

ok($node->poll_query_until('postgres', 'SELECT count(*) > 0 FROM worker_results'),
	'the job ran');
$node->safe_psql('postgres', q{SELECT cron.unschedule('hipaa_guard_keys')});

is($node->safe_psql('postgres', 'SELECT DISTINCT decrypted FROM worker_results'),
	'read by a worker', 'worker decrypts');
is( $node->safe_psql('postgres',
		'SELECT DISTINCT hipaa_guard.decrypt(encrypted) FROM worker_results'),
	'written by a worker',
	'worker encrypts, backend decrypts');
is($node->safe_psql('postgres', 'SELECT DISTINCT backend_type FROM worker_results'),
	'pg_cron', 'job ran in a pg_cron background worker');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM cron.job_run_details WHERE status <> 'succeeded' AND status <> 'running'}),
	'0',
	'no job run failed');

$node->stop;
done_testing();
