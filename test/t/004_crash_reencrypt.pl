# A crash in the middle of hipaa_guard.reencrypt(): the batches committed
# before the crash stay re-encrypted, every value still decrypts, a second
# run finishes the rest, and the nonce budget recorded for each key version
# still covers every value encrypted under it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use HipaaGuardTest qw(write_random_key start_node);

my $rows = 20000;
my $tempdir = PostgreSQL::Test::Utils::tempdir;

my $key_file = "$tempdir/master.key";
write_random_key($key_file);

my $node = start_node('crash', $key_file);

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION hipaa_guard;
SELECT hipaa_guard.create_key('phi');
CREATE TABLE t (id integer PRIMARY KEY, v hipaa_guard.encrypted_text('phi'));
INSERT INTO t SELECT i, ('fake value ' || i)::text FROM generate_series(1, $rows) AS i;
VACUUM ANALYZE t;
SELECT hipaa_guard.rotate_key('phi');
});

my $count_v2 =
  'SELECT count(*) FROM t WHERE hipaa_guard.key_version(v) = 2';
my $count_decrypted =
  q{SELECT count(*) FROM t WHERE hipaa_guard.decrypt(v) = 'fake value ' || id};
my $budget_query = q{SELECT dv.encryptions
  FROM hipaa_guard.data_key_versions dv JOIN hipaa_guard.data_keys k USING (key_id)
 WHERE k.name = 'phi' AND dv.version = };

# A row lock three quarters into the table stops reencrypt() at a known
# point: the batches before it commit, the batch that reaches the row waits.
my $locker = $node->background_psql('postgres');
$locker->query_safe("BEGIN; SELECT id FROM t WHERE id = 15000 FOR UPDATE");

my $reencrypt = $node->background_psql('postgres', on_error_stop => 0);
$reencrypt->query_until(
	qr/reencrypt started/, q{
\echo reencrypt started
CALL hipaa_guard.reencrypt('t', batch_size => 500);
});

ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) > 0 FROM pg_stat_activity
 WHERE wait_event_type = 'Lock' AND query LIKE 'CALL hipaa_guard.reencrypt%'}),
	'reencrypt waits for the locked row');
my $before_crash = $node->safe_psql('postgres', $count_v2);
note "rows on version 2 before the crash: $before_crash of $rows";
cmp_ok($before_crash, '>', 0, 'before crash: some rows re-encrypted');
cmp_ok($before_crash, '<', $rows, 'before crash: some rows left');

$node->stop('immediate');
# Both sessions lost their server; psql may have exited already.
eval { $locker->quit; };
eval { $reencrypt->quit; };
$node->start;

my $after_crash = $node->safe_psql('postgres', $count_v2);
is($after_crash, $before_crash, 'after crash: committed batches kept');
is($node->safe_psql('postgres', $count_decrypted),
	$rows, 'after crash: every value decrypts');

note 'encryptions recorded for versions 1 and 2: ',
  $node->safe_psql('postgres', $budget_query . '1'), ', ',
  $node->safe_psql('postgres', $budget_query . '2');

# Each lease of the nonce budget is recorded before its first use, so the
# recorded count is an upper bound of the values under each version.
cmp_ok($node->safe_psql('postgres', $budget_query . '1'),
	'>=', $rows, 'after crash: version 1 budget covers its values');
cmp_ok($node->safe_psql('postgres', $budget_query . '2'),
	'>=', $after_crash, 'after crash: version 2 budget covers its values');
cmp_ok(
	$node->safe_psql(
		'postgres', "SELECT encryptions FROM hipaa_guard.keys WHERE name = 'phi'"
	),
	'>=',
	$rows + $after_crash,
	'after crash: keys view covers all values');

# A second run re-encrypts only what is left.
my ($stdout, $stderr);
$node->psql(
	'postgres',
	"CALL hipaa_guard.reencrypt('t', batch_size => 500)",
	stdout => \$stdout,
	stderr => \$stderr,
	on_error_stop => 1);
my $remaining = $rows - $after_crash;
like(
	$stderr,
	qr/NOTICE:  hipaa_guard: re-encrypted $remaining rows of t/,
	'second run re-encrypts the rest');
is($node->safe_psql('postgres', $count_v2), $rows, 'all rows on version 2');
is($node->safe_psql('postgres', $count_decrypted),
	$rows, 'all rows decrypt after second run');
cmp_ok($node->safe_psql('postgres', $budget_query . '2'),
	'>=', $rows, 'version 2 budget covers all values');

# destroy_key() erases the wrapped key in place at once, outside the
# transaction: the erasure must survive a crash before that transaction
# commits.
$node->safe_psql(
	'postgres', q{
SELECT hipaa_guard.create_key('doomed');
CREATE TABLE d (id integer PRIMARY KEY, v hipaa_guard.encrypted_text('doomed'));
INSERT INTO d VALUES (1, 'fake doomed value'::text);
});
my $destroyer = $node->background_psql('postgres');
$destroyer->query_safe("BEGIN; SELECT hipaa_guard.destroy_key('doomed')");
$node->stop('immediate');
eval { $destroyer->quit; };
$node->start;

$node->psql(
	'postgres',
	'SELECT hipaa_guard.decrypt(v) FROM d',
	stdout => \$stdout,
	stderr => \$stderr,
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like(
	$stderr,
	qr/ERROR:  55000: data key "doomed" has been destroyed/,
	'uncommitted destroy survives crash');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FILTER (WHERE dv.wrapped <> decode(repeat('00', length(dv.wrapped)), 'hex')),
       count(*)
  FROM hipaa_guard.data_key_versions dv JOIN hipaa_guard.data_keys k USING (key_id)
 WHERE k.name = 'doomed'}),
	'0|2',
	'uncommitted destroy: both versions zeroed');

$node->stop;

done_testing();
