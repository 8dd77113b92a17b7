# Plaintext bound as a parameter by a client program: pgbench sends its
# variables as parameters of the extended and prepared protocols, and a
# parameter typed text is encrypted under the column's key on INSERT.
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
my $node = start_node('client', $key_file);
$node->safe_psql('postgres', q{
CREATE EXTENSION hipaa_guard;
SELECT hipaa_guard.create_key('phi');
CREATE TABLE bound_params (id int, mode text, v hipaa_guard.encrypted_text('phi'));
});

for my $mode ('extended', 'prepared')
{
	$node->pgbench(
		"--no-vacuum --client=2 --transactions=50 --protocol=$mode",
		0,
		[qr{processed: 100/100}],
		[qr{^$}],
		"pgbench inserts with the $mode protocol",
		{
			"insert_$mode" => qq{\\set n random(1, 1000000)
INSERT INTO bound_params VALUES (:n, '$mode', ('plain-' || :n)::text);
}
		});
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM bound_params WHERE mode = '$mode'"),
		'100',
		"$mode: every row stored");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM bound_params WHERE mode = '$mode'
			   AND hipaa_guard.decrypt(v) = 'plain-' || id"),
		'100',
		"$mode: every value decrypts to what was bound");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM bound_params WHERE mode = '$mode'
			   AND v::text NOT LIKE 'hg1:%'"),
		'0',
		"$mode: only envelopes stored");
}

# An untyped parameter reaches the input function, which rejects plaintext.
$node->pgbench(
	'--no-vacuum --client=1 --transactions=1 --protocol=extended',
	2,
	[],
	[qr{invalid input syntax for type encrypted_text}],
	'untyped parameter is rejected',
	{ 'insert_untyped' => q{INSERT INTO bound_params VALUES (1, 'untyped', :client_id);
} });

$node->stop;
done_testing();
