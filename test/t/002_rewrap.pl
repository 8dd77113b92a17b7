# Master key rotation: a new master key with the old one as the previous
# key, rewrap_keys(), then the old key removed.  Rewrapping changes only the
# wrapping of the data keys, so stored ciphertext must stay byte for byte the
# same and every value must decrypt at each step.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use HipaaGuardTest qw(write_random_key restart_with_key_settings);

my $key_dir = PostgreSQL::Test::Utils::tempdir;

my $old_file = "$key_dir/old.key";
my $new_file = "$key_dir/new.key";
write_random_key($old_file);
write_random_key($new_file);

my $node = PostgreSQL::Test::Cluster->new('rewrap');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'hipaa_guard'
include_if_exists = 'hipaa_guard_key.conf'
});
PostgreSQL::Test::Utils::append_to_file(
	$node->data_dir . '/hipaa_guard_key.conf',
	"hipaa_guard.master_key_file = '$old_file'\n");
$node->start;

# Two keys, one of them with a second version, and values of every type
# under both versions, plus a blind index that depends on the MAC key.
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION hipaa_guard;
SELECT hipaa_guard.create_key('phi');
SELECT hipaa_guard.create_key('notes');
CREATE TABLE records (
    id integer PRIMARY KEY,
    ssn hipaa_guard.encrypted_text('phi'),
    dob hipaa_guard.encrypted_date('phi'),
    note hipaa_guard.encrypted_jsonb('notes'),
    scan hipaa_guard.encrypted_bytea('notes')
);
INSERT INTO records VALUES
    (1, '987-65-4320'::text, '1970-01-02'::date, '{"note": "fake one"}'::jsonb, '\x0102'::bytea),
    (2, '987-65-4321'::text, '1980-03-04'::date, '{"note": "fake two"}'::jsonb, '\x0304'::bytea);
SELECT hipaa_guard.rotate_key('phi');
INSERT INTO records VALUES
    (3, '987-65-4322'::text, '1990-05-06'::date, '{"note": "fake three"}'::jsonb, '\x0506'::bytea);
});

my $plaintext_query = q{SELECT id, hipaa_guard.decrypt(ssn), hipaa_guard.decrypt(dob),
       hipaa_guard.decrypt(note), hipaa_guard.decrypt(scan)
  FROM records ORDER BY id};
my $ciphertext_query =
  'SELECT id, ssn::text, dob::text, note::text, scan::text FROM records ORDER BY id';
my $blind_index_query =
  q{SELECT encode(hipaa_guard.blind_index('987-65-4320', 'phi'), 'hex')};
my $fingerprint_query =
  'SELECT fingerprint, previous_fingerprint FROM hipaa_guard.master_key_status()';

my $plaintext = $node->safe_psql('postgres', $plaintext_query);
my $ciphertext = $node->safe_psql('postgres', $ciphertext_query);
my $blind_index = $node->safe_psql('postgres', $blind_index_query);
my $versions = $node->safe_psql('postgres',
	'SELECT count(*) FROM hipaa_guard.data_key_versions');
is( $node->safe_psql(
		'postgres',
		'SELECT count(DISTINCT hipaa_guard.key_version(ssn)) FROM records'),
	'2',
	'values under two key versions');
my ($old_fingerprint) =
  split /\|/, $node->safe_psql('postgres', $fingerprint_query);

# The new key, with the old one to read the keyring until it is rewrapped.
restart_with_key_settings(
	$node,
	master_key_file => $new_file,
	previous_master_key_file => $old_file);
my ($new_fingerprint, $previous_fingerprint) =
  split /\|/, $node->safe_psql('postgres', $fingerprint_query);
isnt($new_fingerprint, $old_fingerprint, 'new key: new fingerprint');
is($previous_fingerprint, $old_fingerprint,
	'new key: previous fingerprint is the old key');
is($node->safe_psql('postgres', $plaintext_query),
	$plaintext, 'before rewrap: values decrypt through the previous key');

my $rewrapped = $node->safe_psql('postgres', 'SELECT hipaa_guard.rewrap_keys()');
cmp_ok($rewrapped, '>', 0, 'rewrap_keys rewraps versions');
is($rewrapped, $versions, 'rewrap_keys rewraps every version');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM hipaa_guard.data_key_versions
          WHERE encode(kek_fingerprint, 'hex') <> '$new_fingerprint'"),
	'0',
	'rewrap: every version under the new key');
is($node->safe_psql('postgres', 'SELECT hipaa_guard.rewrap_keys()'),
	'0', 'second rewrap finds nothing to do');

# The old key is gone for good.
restart_with_key_settings($node, master_key_file => $new_file);
is( $node->safe_psql(
		'postgres',
		'SELECT previous_fingerprint IS NULL FROM hipaa_guard.master_key_status()'
	),
	't',
	'old key removed: no previous key');
is($node->safe_psql('postgres', $plaintext_query),
	$plaintext, 'old key removed: values decrypt');
is($node->safe_psql('postgres', $ciphertext_query),
	$ciphertext, 'old key removed: ciphertext unchanged');
is($node->safe_psql('postgres', $blind_index_query),
	$blind_index, 'old key removed: blind index unchanged');

# New keys, versions and values work under the new master key.
$node->safe_psql(
	'postgres', q{
SELECT hipaa_guard.create_key('after_rewrap');
SELECT hipaa_guard.rotate_key('notes');
INSERT INTO records VALUES
    (4, '987-65-4323'::text, '2000-07-08'::date, '{"note": "fake four"}'::jsonb, '\x0708'::bytea);
});
is( $node->safe_psql(
		'postgres',
		"SELECT hipaa_guard.decrypt(ssn) || ' ' || hipaa_guard.decrypt(note)::text
           FROM records WHERE id = 4"),
	'987-65-4323 {"note": "fake four"}',
	'old key removed: new value decrypts');
is( $node->safe_psql(
		'postgres',
		"SELECT hipaa_guard.decrypt(hipaa_guard.encrypt('fake value'::text, 'after_rewrap'))"
	),
	'fake value',
	'old key removed: new key works');

$node->stop;

done_testing();
