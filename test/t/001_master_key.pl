# Master key loading: every way the key can be missing or malformed, a key
# from a command, restarts with the same key, a wrong key, and a server that
# does not preload the library.  A bad key must never stop the server, and
# every use of a key must then fail with an error that says why.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use HipaaGuardTest qw(restart_with_key_settings);

my $key_dir = PostgreSQL::Test::Utils::tempdir;

# Write a key file with the given contents and mode.
sub write_key_file
{
	my ($path, $contents, $mode) = @_;

	unlink $path;
	open my $fh, '>', $path or die "could not create $path: $!";
	print $fh $contents;
	close $fh or die "could not write $path: $!";
	chmod $mode, $path or die "could not chmod $path: $!";
	return;
}

# Return 64 random hex characters: a 256-bit master key.
sub random_key_hex
{
	open my $random, '<:raw', '/dev/urandom'
	  or die "could not open /dev/urandom: $!";
	read($random, my $bytes, 32) == 32
	  or die "could not read 32 bytes from /dev/urandom";
	close $random;
	return unpack('H*', $bytes);
}

# Run SQL that is expected to fail; return psql's stderr with the SQLSTATE.
sub psql_error
{
	my ($node, $dbname, $sql) = @_;
	my ($stdout, $stderr);

	$node->psql(
		$dbname, $sql,
		stdout => \$stdout,
		stderr => \$stderr,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return $stderr;
}

# Check the startup warning, then that create_key fails with the documented
# error and a detail matching $detail_re, for one broken configuration.
sub check_key_not_loaded
{
	my ($node, $case, $log_offset, $detail_re) = @_;
	my $log = slurp_file($node->logfile, $log_offset);
	my $stderr = psql_error($node, 'postgres',
		"SELECT hipaa_guard.create_key('phi')");

	like(
		$log,
		qr/WARNING:  hipaa_guard master key not loaded/,
		"$case: startup warning");
	like($log, $detail_re, "$case: startup warning detail");
	like(
		$stderr,
		qr/ERROR:  55000: hipaa_guard master key not loaded/,
		"$case: create_key error");
	like($stderr, $detail_re, "$case: create_key error detail");
	return;
}

my $good_key = random_key_hex();
my $wrong_key = random_key_hex();
my $short_key = substr(random_key_hex(), 0, 10);
my $nonhex_key = substr(random_key_hex(), 0, 60) . 'wxyz';
my $good_file = "$key_dir/good.key";
my $wrong_file = "$key_dir/wrong.key";

# Fake test values, standing in for PHI; none may reach the server log.
my @phi = ('987-65-4320', '987-65-4321', 'Fakename Testpatient');

my $node = PostgreSQL::Test::Cluster->new('master_key');
$node->init;
# PostgreSQL::Test::Cluster sets log_statement = all, which logs every
# statement's text, plaintext literals included, whatever the extension does.
# The server default is none: the log check below then sees only what
# PostgreSQL and the extension log on their own.
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'hipaa_guard'
log_statement = none
include_if_exists = 'hipaa_guard_key.conf'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION hipaa_guard');

# No key configured.
my $offset = -s $node->logfile;
restart_with_key_settings($node);
check_key_not_loaded($node, 'no key', $offset,
	qr/DETAIL:  Neither hipaa_guard.master_key_command nor hipaa_guard.master_key_file is set/
);
is( $node->safe_psql(
		'postgres', 'SELECT loaded, source FROM hipaa_guard.master_key_status()'),
	'f|none',
	'no key: master_key_status');

# A key file that others can read is rejected before it is read.
write_key_file("$key_dir/open.key", $good_key, 0644);
$offset = -s $node->logfile;
restart_with_key_settings($node, master_key_file => "$key_dir/open.key");
check_key_not_loaded($node, 'mode 0644', $offset,
	qr/DETAIL:  The master key file ".*open\.key" must be owned by the database server's operating system user and have mode 0600 or 0400; it has mode 0644/
);

write_key_file("$key_dir/short.key", $short_key, 0600);
$offset = -s $node->logfile;
restart_with_key_settings($node, master_key_file => "$key_dir/short.key");
check_key_not_loaded($node, 'short key', $offset,
	qr/DETAIL:  The master key has 10 characters; it must be 64 hexadecimal characters/
);

write_key_file("$key_dir/nonhex.key", $nonhex_key, 0600);
$offset = -s $node->logfile;
restart_with_key_settings($node, master_key_file => "$key_dir/nonhex.key");
check_key_not_loaded($node, 'non-hex key', $offset,
	qr/DETAIL:  The master key contains characters that are not hexadecimal digits/
);

$offset = -s $node->logfile;
restart_with_key_settings($node, master_key_command => 'exit 1');
check_key_not_loaded($node, 'failing command', $offset,
	qr/DETAIL:  The master key command failed with exit status 1/);

# Both sources set, each of them valid on its own: neither is guessed at.
write_key_file($good_file, $good_key, 0600);
$offset = -s $node->logfile;
restart_with_key_settings(
	$node,
	master_key_command => "cat $good_file",
	master_key_file => $good_file);
check_key_not_loaded($node, 'command and file', $offset,
	qr/DETAIL:  Both a master key command and a master key file are set/);

# A working command: create the keyring and store values under it.
$offset = -s $node->logfile;
restart_with_key_settings($node, master_key_command => "cat $good_file");
unlike(
	slurp_file($node->logfile, $offset),
	qr/master key not loaded/,
	'command: no startup warning');
is( $node->safe_psql(
		'postgres', 'SELECT loaded, source FROM hipaa_guard.master_key_status()'),
	't|hipaa_guard.master_key_command',
	'command: master_key_status');
my $fingerprint = $node->safe_psql('postgres',
	'SELECT fingerprint FROM hipaa_guard.master_key_status()');

$node->safe_psql(
	'postgres', qq{
SELECT hipaa_guard.create_key('phi');
CREATE TABLE patients (id integer PRIMARY KEY, ssn hipaa_guard.encrypted_text('phi'));
INSERT INTO patients VALUES (1, '$phi[0]'::text);
COPY patients FROM STDIN (FORMAT csv);
2,$phi[1]
3,$phi[2]
\\.
});
my $expected = "1|$phi[0]\n2|$phi[1]\n3|$phi[2]";
my $select_plaintext =
  'SELECT id, hipaa_guard.decrypt(ssn) FROM patients ORDER BY id';
is($node->safe_psql('postgres', $select_plaintext),
	$expected, 'command: values decrypt');
my $stored = $node->safe_psql('postgres',
	'SELECT ssn::text FROM patients ORDER BY id');
unlike($stored, qr/\Q$phi[0]\E/, 'command: text output is ciphertext');

# The same key from a file, after a restart.
restart_with_key_settings($node, master_key_file => $good_file);
is( $node->safe_psql(
		'postgres', 'SELECT source FROM hipaa_guard.master_key_status()'),
	'hipaa_guard.master_key_file',
	'same key from file: source');
is( $node->safe_psql(
		'postgres', 'SELECT fingerprint FROM hipaa_guard.master_key_status()'),
	$fingerprint,
	'same key from file: fingerprint');
is($node->safe_psql('postgres', $select_plaintext),
	$expected, 'same key from file: values decrypt');

# A wrong key loads (it is well formed), but nothing may be read or
# encrypted under it, and the keyring must not change.
my $keyring_query =
  q{SELECT key_id, version, encode(kek_fingerprint, 'hex'), encryptions
  FROM hipaa_guard.data_key_versions ORDER BY key_id, version};
my $keyring_before = $node->safe_psql('postgres', $keyring_query);
my $keyring_check_query =
  q{SELECT encode(fingerprint, 'hex') FROM hipaa_guard.keyring_check};
my $keyring_check_before = $node->safe_psql('postgres', $keyring_check_query);

write_key_file($wrong_file, $wrong_key, 0600);
restart_with_key_settings($node, master_key_file => $wrong_file);
isnt(
	$node->safe_psql(
		'postgres', 'SELECT fingerprint FROM hipaa_guard.master_key_status()'),
	$fingerprint,
	'wrong key: other fingerprint');

my $mismatch = qr/ERROR:  55000: master key does not match the keyring/;
like(psql_error($node, 'postgres', $select_plaintext),
	$mismatch, 'wrong key: decrypt error');
like(psql_error($node, 'postgres', "SELECT hipaa_guard.create_key('other')"),
	$mismatch, 'wrong key: create_key error');
like(
	psql_error(
		$node, 'postgres',
		"SELECT hipaa_guard.encrypt('wrong key probe'::text, 'phi')"),
	$mismatch,
	'wrong key: encrypt error');
like(
	psql_error(
		$node, 'postgres',
		"INSERT INTO patients VALUES (4, 'wrong key probe'::text)"),
	$mismatch,
	'wrong key: insert error');

# A COPY FROM that fails on a plaintext field: PostgreSQL's COPY error
# context names the field's value, which the log check below looks for.
my $copy_phi = '987-65-4329';
push @phi, $copy_phi;
like(
	psql_error(
		$node, 'postgres', "COPY patients FROM STDIN (FORMAT csv);\n5,$copy_phi\n\\.\n"),
	$mismatch,
	'wrong key: copy error');

is($node->safe_psql('postgres', 'SELECT count(*) FROM patients'),
	'3', 'wrong key: no row added');
is($node->safe_psql('postgres', $keyring_query),
	$keyring_before, 'wrong key: key versions unchanged');
is($node->safe_psql('postgres', $keyring_check_query),
	$keyring_check_before, 'wrong key: keyring check unchanged');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM hipaa_guard.data_keys WHERE name = 'other'"),
	'0',
	'wrong key: no key created');

# The right key again.
restart_with_key_settings($node, master_key_file => $good_file);
is($node->safe_psql('postgres', $select_plaintext),
	$expected, 'right key again: values decrypt');
is($node->safe_psql('postgres', 'SELECT ssn::text FROM patients ORDER BY id'),
	$stored, 'right key again: ciphertext unchanged');
$node->safe_psql('postgres', "SELECT hipaa_guard.create_key('after_wrong')");
is( $node->safe_psql(
		'postgres',
		"SELECT hipaa_guard.decrypt(hipaa_guard.encrypt('fake value'::text, 'after_wrong'))"
	),
	'fake value',
	'right key again: new key works');

# Without shared_preload_libraries the key is never read: an existing keyring
# cannot be used, and a new database can install the extension but create no
# key.
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
my $not_preloaded =
  qr/ERROR:  55000: hipaa_guard must be loaded via "shared_preload_libraries"/;
my $stderr = psql_error($node, 'postgres', $select_plaintext);
like($stderr, $not_preloaded, 'not preloaded: decrypt error');
like(
	$stderr,
	qr/HINT:  Add hipaa_guard to shared_preload_libraries/,
	'not preloaded: decrypt hint');
like(
	psql_error(
		$node, 'postgres',
		"SELECT hipaa_guard.encrypt('not preloaded probe'::text, 'phi')"),
	$not_preloaded,
	'not preloaded: encrypt error');
like(psql_error($node, 'postgres', "SELECT hipaa_guard.create_key('other')"),
	$not_preloaded, 'not preloaded: create_key error');

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
is($node->psql('fresh', 'CREATE EXTENSION hipaa_guard'),
	0, 'not preloaded: CREATE EXTENSION works');
like(psql_error($node, 'fresh', "SELECT hipaa_guard.create_key('phi')"),
	$not_preloaded, 'not preloaded: create_key error in new database');
like(
	psql_error(
		$node, 'fresh',
		"SELECT hipaa_guard.encrypt('not preloaded probe'::text, 'phi')"),
	$not_preloaded,
	'not preloaded: encrypt error in new database');

$node->stop;

# Neither key material nor plaintext may reach the log, whatever failed.
# Only counts are compared, so that a failure does not print the log.
my $log = slurp_file($node->logfile);
my %keys = (
	good => $good_key,
	wrong => $wrong_key,
	short => $short_key,
	'non-hex' => $nonhex_key);
for my $name (sort keys %keys)
{
	my $count = () = $log =~ /\Q$keys{$name}\E/gi;
	is($count, 0, "log: no $name key");
}
for my $value (@phi)
{
	my $count = () = $log =~ /\Q$value\E/g;
	is($count, 0, "log: no plaintext $value");
}

done_testing();
