# Retention purges under failure and load: a crash in the middle of a purge
# (the committed batches stay purged and counted, nothing held is purged,
# the next purge finishes without purging anything twice), a second purge
# while one is running (skipped), a cancelled purge (its lock is released),
# and a purge while two clients insert into and read the same table (no
# statement waits for the purge).
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
my $node = start_node('purge', $key_file);

# 40,000 visits of 100 patients; the even ids are two years old, the odd
# ones a day old.  Patient p8 is on hold.
my $rows = 40000;
$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION hipaa_guard;
CREATE TABLE visits (id bigserial PRIMARY KEY, patient text, seen timestamptz, note text);
INSERT INTO visits (patient, seen, note)
SELECT 'p' || (i % 100), now() - CASE WHEN i % 2 = 0 THEN interval '2 years' ELSE interval '1 day' END,
       'visit ' || i
  FROM generate_series(1, $rows) AS i;
VACUUM ANALYZE visits;
SELECT hipaa_guard.set_retention('visits', 'seen', interval '1 year');
SELECT hipaa_guard.set_patient_column('visits', 'patient');
SELECT hipaa_guard.legal_hold('visits', 'p8', 'Case 2026-CV-0042, patient p8');
});

my $expired_sql = q{SELECT count(*) FROM visits WHERE seen < now() - interval '1 year'};
my $held_sql =
  q{SELECT count(*) FROM visits WHERE seen < now() - interval '1 year' AND patient = 'p8'};
my $held = $node->safe_psql('postgres', $held_sql);
my $due = $node->safe_psql('postgres', $expired_sql) - $held;
cmp_ok($held, '>', 0, "patient p8 has $held expired rows on hold");

# A row lock three quarters into the table stops the purge at a known
# point: the batches before it commit, the batch that reaches the row waits.
sub lock_row
{
	my ($id) = @_;
	my $locker = $node->background_psql('postgres');
	$locker->query_safe("BEGIN; SELECT id FROM visits WHERE id = $id FOR UPDATE");
	return $locker;
}

sub start_purge
{
	my ($label) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_until(
		qr/$label started/, qq{
\\echo $label started
CALL hipaa_guard.purge(batch_size => 1000);
});
	return $session;
}

sub purge_waits_for_lock
{
	return $node->poll_query_until(
		'postgres', q{
SELECT count(*) > 0 FROM pg_stat_activity
 WHERE wait_event_type = 'Lock' AND query LIKE 'CALL hipaa_guard.purge%'});
}

my $receipt_sql =
  'SELECT rows_purged, rows_held, status FROM hipaa_guard.purge_receipts WHERE receipt_id = ';

# 1. Crash.
my $locker = lock_row(30000);
my $purge = start_purge('crash purge');
ok(purge_waits_for_lock(), 'purge waits for the locked row');
my ($purged_before, $held_before) = split /\|/, $node->safe_psql('postgres', $receipt_sql . '1');
cmp_ok($purged_before, '>', 0, "before the crash: $purged_before rows purged in committed batches");
cmp_ok($purged_before, '<', $due, 'before the crash: some rows left');

$node->stop('immediate');
eval { $locker->quit; };
eval { $purge->quit; };
$node->start;

is($node->safe_psql('postgres', $receipt_sql . '1'),
	"$purged_before|$held_before|interrupted",
	'after the crash: the receipt counts the committed batches and shows the purge interrupted');
is($node->safe_psql('postgres', 'SELECT count(*) FROM visits'),
	$rows - $purged_before, 'after the crash: exactly those rows are gone');
is($node->safe_psql('postgres', $held_sql), $held, 'after the crash: every held row is there');

my ($stdout, $stderr);
$node->psql('postgres', 'CALL hipaa_guard.purge(batch_size => 1000)',
	stderr => \$stderr, on_error_stop => 1);
my $rest = $due - $purged_before;
like($stderr, qr/rows purged: $rest, rows held: $held/,
	'the next purge purges the rest, and only the rest');
is($node->safe_psql('postgres', $expired_sql), $held, 'only held rows are left expired');
is($node->safe_psql('postgres',
		q{SELECT sum(rows_purged) FROM hipaa_guard.purge_receipts WHERE table_name = 'public.visits'}),
	$due, 'receipts account for every purged row once');
$node->psql('postgres', 'CALL hipaa_guard.purge()', stderr => \$stderr, on_error_stop => 1);
like($stderr, qr/rows purged: 0, rows held: $held/, 'a purge repeated at once finds nothing');

# 2. A second purge while one runs is skipped; a cancelled purge releases
# its lock although its session stays open.
$node->safe_psql(
	'postgres', qq{
INSERT INTO visits (patient, seen, note)
SELECT 'p' || (i % 100), now() - interval '2 years', 'late entry ' || i FROM generate_series(1, $rows) AS i;
});
my $late_id = $node->safe_psql('postgres',
	q{SELECT id FROM visits WHERE note = 'late entry 30000'});
$locker = lock_row($late_id);
$purge = start_purge('first purge');
ok(purge_waits_for_lock(), 'first purge waits for the locked row');
$node->psql('postgres', 'CALL hipaa_guard.purge()', stderr => \$stderr, on_error_stop => 1);
like($stderr, qr/NOTICE:  purge skipped: another purge is running in this database/,
	'a second purge is skipped with a notice');

my $purge_pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL hipaa_guard.purge%' AND wait_event_type = 'Lock'});
$node->safe_psql('postgres', "SELECT pg_cancel_backend($purge_pid)");
ok( $node->poll_query_until(
		'postgres', qq{SELECT state = 'idle' FROM pg_stat_activity WHERE pid = $purge_pid}),
	'the cancelled purge session is idle');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1751580672 AND objid = 1}),
	'0', 'the cancelled purge released the purge lock');
is($node->safe_psql('postgres',
		q{SELECT status FROM hipaa_guard.purge_receipts ORDER BY receipt_id DESC LIMIT 1}),
	'interrupted', 'the cancelled purge shows as interrupted');
$locker->query_safe('COMMIT');
$locker->quit;
$purge->quit;
$node->psql('postgres', 'CALL hipaa_guard.purge()', stderr => \$stderr, on_error_stop => 1);
unlike($stderr, qr/skipped/, 'after the cancel, a purge runs');
is($node->safe_psql('postgres', $expired_sql), $node->safe_psql('postgres', $held_sql),
	'and purges the rest');

# 3. Two clients insert and read while a purge deletes 100,000 rows.
$node->safe_psql(
	'postgres', q{
INSERT INTO visits (patient, seen, note)
SELECT 'p' || (i % 100), now() - interval '2 years', 'bulk ' || i FROM generate_series(1, 100000) AS i;
VACUUM ANALYZE visits;
});
my $script = "$tempdir/insert_read.sql";
PostgreSQL::Test::Utils::append_to_file(
	$script, q{
\set p random(1, 100)
INSERT INTO visits (patient, seen, note) VALUES ('p' || :p, now(), 'pgbench');
SELECT count(*) FROM visits WHERE id = (SELECT max(id) FROM visits);
});
my @pgbench = (
	'pgbench', '-n', '-c', '2', '-j', '2', '-T', '8', '-f', $script,
	'-l', "--log-prefix=$tempdir/pgbench",
	'-h', $node->host, '-p', $node->port, 'postgres');
my ($bench_out, $bench_err) = ('', '');
my $bench = IPC::Run::start(\@pgbench, '>', \$bench_out, '2>', \$bench_err);
ok($node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM visits WHERE note = 'pgbench'}),
	'the clients are inserting');
$node->psql('postgres', 'CALL hipaa_guard.purge(batch_size => 10000)',
	stderr => \$stderr, on_error_stop => 1);
like($stderr, qr/rows purged: \d+/, 'the purge ran alongside the clients');
$bench->finish;
is($bench->result(0), 0, 'pgbench succeeded') or diag $bench_err;

# pgbench's per-transaction log: the third field is the latency in microseconds.
my ($max_latency, $transactions) = (0, 0);
for my $log (glob("$tempdir/pgbench*"))
{
	open my $fh, '<', $log or die "could not open $log: $!";
	while (my $line = <$fh>)
	{
		my @fields = split ' ', $line;
		$transactions++;
		$max_latency = $fields[2] if $fields[2] > $max_latency;
	}
	close $fh;
}
my $batch_ms = $node->safe_psql(
	'postgres', q{
SELECT round(extract(epoch FROM max(b.committed_at - prev)) * 1000)
  FROM (SELECT committed_at, lag(committed_at) OVER (ORDER BY batch) AS prev
          FROM hipaa_guard.purge_receipt_batches
         WHERE receipt_id = (SELECT max(receipt_id) FROM hipaa_guard.purge_receipt_log)) AS b});
note sprintf('%d transactions, slowest %.1f ms; slowest purge batch %s ms',
	$transactions, $max_latency / 1000, $batch_ms);
cmp_ok($transactions, '>', 100, 'the clients kept working during the purge');
cmp_ok($max_latency, '<', 1_000_000, 'no client statement waited a second');
is($node->safe_psql('postgres', q{SELECT count(*) FROM visits WHERE note = 'pgbench'}),
	$transactions, 'every inserted row is there: the purge took none of them');
is($node->safe_psql('postgres', $expired_sql), $node->safe_psql('postgres', $held_sql),
	'the purge left only held rows expired');

done_testing();
