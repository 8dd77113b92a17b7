# Nonces under concurrency: sessions that encrypt the same value under the
# same key at the same time must never repeat a nonce, and automatic
# rotation must keep every key version within its encryption budget while
# sessions race to rotate it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use HipaaGuardTest qw(write_random_key start_node);

my $tempdir = PostgreSQL::Test::Utils::tempdir;

my $key_file = "$tempdir/master.key";
write_random_key($key_file);

my $node = start_node('nonce', $key_file);

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION hipaa_guard;
SELECT hipaa_guard.create_key('phi');
CREATE TABLE n (id bigserial PRIMARY KEY, v hipaa_guard.encrypted_text);
});

# The nonce is bytes 12 to 23 of the binary envelope, after the "hg1:" prefix
# of the text form.
my $nonce = q{substr(decode(substr(v::text, 5), 'base64'), 13, 12)};

# 4 clients x 10 transactions x 500 rows of one value under one key.
$node->pgbench(
	'--no-vacuum --client=4 --jobs=4 --transactions=10',
	0,
	[qr{number of transactions actually processed: 40/40}],
	[qr{^$}],
	'concurrent encryption',
	{
		'005_same_value' => q{
INSERT INTO n (v) SELECT hipaa_guard.encrypt('same value', 'phi') FROM generate_series(1, 500);
}
	});

is($node->safe_psql('postgres', 'SELECT count(*) FROM n'),
	'20000', 'concurrent encryption: all rows stored');
is($node->safe_psql('postgres', "SELECT count(DISTINCT $nonce) FROM n"),
	'20000', 'concurrent encryption: no repeated nonce');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT v::text) FROM n'),
	'20000', 'concurrent encryption: no repeated ciphertext');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM n WHERE hipaa_guard.decrypt(v) = 'same value'"),
	'20000',
	'concurrent encryption: all rows decrypt');
cmp_ok(
	$node->safe_psql(
		'postgres', "SELECT encryptions FROM hipaa_guard.keys WHERE name = 'phi'"
	),
	'>=', 20000,
	'concurrent encryption: budget covers all values');

# Automatic rotation: small leases, so that the two sessions race for the
# last encryptions of each version and both try to rotate it.
$node->safe_psql(
	'postgres', q{
ALTER SYSTEM SET hipaa_guard.rotate_after_encryptions = 50;
ALTER SYSTEM SET hipaa_guard.nonce_lease_size = 10;
SELECT pg_reload_conf();
SELECT hipaa_guard.create_key('auto');
CREATE TABLE r (id bigserial PRIMARY KEY, v hipaa_guard.encrypted_text);
});
ok( $node->poll_query_until(
		'postgres', 'SHOW hipaa_guard.rotate_after_encryptions', '50'),
	'rotation setting reloaded');

# 2 clients x 10 transactions x 10 rows: 200 encryptions, 4 budgets of 50.
$node->pgbench(
	'--no-vacuum --client=2 --jobs=2 --transactions=10',
	0,
	[qr{number of transactions actually processed: 20/20}],
	[qr{^$}],
	'encryption with automatic rotation',
	{
		'005_rotation' => q{
INSERT INTO r (v) SELECT hipaa_guard.encrypt('rotated value ' || i, 'auto') FROM generate_series(1, 10) AS i;
}
	});

my $versions_query = q{SELECT dv.version, dv.encryptions
  FROM hipaa_guard.data_key_versions dv JOIN hipaa_guard.data_keys k USING (key_id)
 WHERE k.name = 'auto' AND dv.version > 0 ORDER BY dv.version};
note "versions of key auto and their encryptions:\n",
  $node->safe_psql('postgres', $versions_query);

is($node->safe_psql('postgres', 'SELECT count(*) FROM r'),
	'200', 'rotation: all rows stored');
cmp_ok(
	$node->safe_psql(
		'postgres', "SELECT versions FROM hipaa_guard.keys WHERE name = 'auto'"),
	'>=', 4,
	'rotation: at least 4 key versions');
is( $node->safe_psql(
		'postgres', q{SELECT count(*)
  FROM hipaa_guard.data_key_versions dv JOIN hipaa_guard.data_keys k USING (key_id)
 WHERE k.name = 'auto' AND dv.version > 0 AND dv.encryptions > 50}),
	'0',
	'rotation: no version over 50 encryptions');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM (
    SELECT hipaa_guard.key_version(v), count(*) FROM r
     GROUP BY 1 HAVING count(*) > 50) AS over_budget}),
	'0',
	'rotation: no version holds over 50 values');
cmp_ok(
	$node->safe_psql(
		'postgres', 'SELECT count(DISTINCT hipaa_guard.key_version(v)) FROM r'),
	'>=', 4,
	'rotation: values under at least 4 versions');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM r WHERE hipaa_guard.decrypt(v) LIKE 'rotated value %'"
	),
	'200',
	'rotation: all rows decrypt');
is($node->safe_psql('postgres', "SELECT count(DISTINCT $nonce) FROM r"),
	'200', 'rotation: no repeated nonce');

$node->stop;

done_testing();
