# Actor tokens from outside the database: the signing secret fetched with
# psql into a file, tokens minted in Perl from it (as a token issuer would),
# the server log of rejected tokens, direct logins with and without a client
# certificate under hipaa_guard.require_mfa, decryption in parallel workers,
# and a database whose encoding is not UTF8.
#
# TLS uses a throwaway CA, server and client certificates made with the
# openssl command, and the server listens on 127.0.0.1 only.
use strict;
use warnings;

use Digest::SHA qw(hmac_sha256);
use JSON::PP;
use MIME::Base64 qw(encode_base64url decode_base64url);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use HipaaGuardTest qw(write_random_key);

my $tempdir = PostgreSQL::Test::Utils::tempdir;
my $issuer = 'https://issuer.example';
my $audience = 'hipaa-guard-tap';

# A CA, a server certificate for 127.0.0.1, and client certificates whose
# common names are the roles they log in as.
sub openssl
{
	system_or_bail('openssl', @_);
	return;
}
my @ec_key = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes');
openssl('req', '-new', '-x509', @ec_key, '-days', '2',
	'-subj', '/CN=hipaa_guard test CA',
	'-keyout', "$tempdir/ca.key", '-out', "$tempdir/ca.crt");
my $serial = 1;
for my $name ('server', 'regress_cert', 'regress_pw_cert')
{
	my $cn = $name eq 'server' ? '127.0.0.1' : $name;
	openssl('req', '-new', @ec_key, '-subj', "/CN=$cn",
		'-keyout', "$tempdir/$name.key", '-out', "$tempdir/$name.csr");
	openssl('x509', '-req', '-in', "$tempdir/$name.csr", '-CA', "$tempdir/ca.crt",
		'-CAkey', "$tempdir/ca.key", '-set_serial', ++$serial, '-days', '2',
		'-out', "$tempdir/$name.crt");
	chmod 0600, "$tempdir/$name.key";
}

my $key_file = "$tempdir/master.key";
write_random_key($key_file);
my $node = PostgreSQL::Test::Cluster->new('actor');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'hipaa_guard'
hipaa_guard.master_key_file = '$key_file'
hipaa_guard.token_issuer = '$issuer'
hipaa_guard.token_audience = '$audience'
listen_addresses = '127.0.0.1'
ssl = on
ssl_ca_file = '$tempdir/ca.crt'
ssl_cert_file = '$tempdir/server.crt'
ssl_key_file = '$tempdir/server.key'
password_encryption = 'scram-sha-256'
max_worker_processes = 16
# The test framework logs every statement, and with it any token written
# into one; servers that receive tokens keep the default, none.
log_statement = none
});
unlink $node->data_dir . '/pg_hba.conf';
$node->append_conf(
	'pg_hba.conf', qq{
local   all  all                           trust
hostssl all  regress_cert     127.0.0.1/32 cert
hostssl all  regress_pw_cert  127.0.0.1/32 scram-sha-256 clientcert=verify-full
hostssl all  regress_pw       127.0.0.1/32 scram-sha-256
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION hipaa_guard;
SELECT hipaa_guard.create_signing_key('app');
SELECT hipaa_guard.create_key('phi');
CREATE ROLE regress_app LOGIN IN ROLE hipaa_app, hipaa_clinician;
CREATE ROLE regress_cert LOGIN IN ROLE hipaa_clinician;
CREATE ROLE regress_pw_cert LOGIN PASSWORD 'pw-cert-secret' IN ROLE hipaa_clinician;
CREATE ROLE regress_pw LOGIN PASSWORD 'pw-secret' IN ROLE hipaa_clinician;
CREATE TABLE charts (id integer PRIMARY KEY, note hipaa_guard.encrypted_text('phi'));
INSERT INTO charts SELECT i, ('note ' || i)::text FROM generate_series(1, 2000) AS i;
VACUUM ANALYZE charts;
GRANT SELECT ON charts TO PUBLIC;
});

# The issuer's copy of the secret: psql writes the query result to a file
# that only its owner can read; the SQL text holds only the key name.
my $secret_file = "$tempdir/app.secret";
my $connstr = $node->connstr('postgres');
my $log_offset = -s $node->logfile;
system_or_bail('sh', '-c',
	qq{umask 077 && psql -XAtq -d "$connstr" -c "SELECT hipaa_guard.signing_secret('app')" > "$secret_file"});
is((stat $secret_file)[2] & 07777, 0600, 'secret file: mode 0600');
my $secret_text = slurp_file($secret_file);
chomp $secret_text;
like($secret_text, qr/^[A-Za-z0-9_-]{43}$/, 'secret file: base64url of 32 bytes');
my $secret = decode_base64url($secret_text);
is(length($secret), 32, 'secret file: 32 bytes');
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/hipaa_guard: signing secret of key "app" read by role "postgres"/,
	'secret read: logged');
unlike($log, qr/\Q$secret_text\E/, 'secret read: the secret is not in the log');

# Mint an HS256 token the way a JWT library does.
my $json = JSON::PP->new->canonical;
sub mint
{
	my (%claims) = @_;
	my $header = { alg => 'HS256', typ => 'JWT', kid => 'app' };
	my $input =
	  encode_base64url($json->encode($header)) . '.'
	  . encode_base64url($json->encode(\%claims));
	return $input . '.' . encode_base64url(hmac_sha256($input, $secret));
}
sub claims
{
	return (
		sub => 'alice@example.org',
		iss => $issuer,
		aud => [$audience],
		exp => time() + 300,
		roles => ['clinician'],
		purpose => 'treatment',
		@_);
}

# A separate connection of the application's login presents the token.
my $token = mint(claims());
my $result = $node->safe_psql(
	'postgres', qq{
BEGIN;
SELECT hipaa_guard.set_actor('$token');
SELECT hipaa_guard.actor() || ' ' || hipaa_guard.actor_roles()::text || ' ' || hipaa_guard.actor_purpose();
COMMIT;
SELECT hipaa_guard.actor();
}, extra_params => ['-U', 'regress_app']);
is( $result,
	"alice\@example.org\nalice\@example.org {clinician} treatment\nregress_app",
	'token from Perl: actor set until commit');

# A rejected token: the error, one LOG line with the reason, and no part of
# the token anywhere in the log, not even the failed statement.
sub check_rejected
{
	my ($name, $bad_token, $reason, $detail) = @_;
	my $offset = -s $node->logfile;
	my ($ret, $stdout, $stderr) = $node->psql(
		'postgres', qq{
BEGIN;
SELECT hipaa_guard.set_actor('$bad_token');
}, extra_params => ['-U', 'regress_app']);
	isnt($ret, 0, "$name: set_actor fails");
	like($stderr, qr/ERROR:  invalid actor token\nDETAIL:  \Q$detail\E/, "$name: error and detail");
	my $log = slurp_file($node->logfile, $offset);
	like($log,
		qr/LOG:  hipaa_guard: rejected actor token for role "regress_app": \Q$reason\E\n/,
		"$name: rejection logged");
	for my $part (grep { length($_) >= 8 } split /\./, $bad_token)
	{
		unlike($log, qr/\Q$part\E/, "$name: no token text in the log");
	}
	unlike($log, qr/STATEMENT:.*set_actor/, "$name: no failed statement in the log");
	return;
}
my $forged = mint(claims(sub => 'mallory'));
my @forged_parts = split /\./, $forged;
$forged_parts[2] = encode_base64url(hmac_sha256("$forged_parts[0].$forged_parts[1]", 'x' x 32));
check_rejected('forged', join('.', @forged_parts),
	'signature does not match', q{The token's signature does not match its signing key.});
check_rejected('expired', mint(claims(exp => time() - 600)),
	'expired', 'The token has expired.');
check_rejected('wrong audience', mint(claims(aud => 'other')),
	'audience mismatch', q{The token's audience ("aud") does not include hipaa_guard.token_audience.});

# Direct logins: only a client certificate checked by pg_hba.conf is a
# second factor, not one the client merely presents.
my $tls = "host=127.0.0.1 port=" . $node->port
  . " dbname=postgres sslmode=verify-ca sslrootcert=$tempdir/ca.crt";
my %logins = (
	'cert method' => "$tls user=regress_cert sslcert=$tempdir/regress_cert.crt sslkey=$tempdir/regress_cert.key",
	'password and clientcert=verify-full' =>
	  "$tls user=regress_pw_cert password=pw-cert-secret sslcert=$tempdir/regress_pw_cert.crt sslkey=$tempdir/regress_pw_cert.key",
	'password, certificate not required' =>
	  "$tls user=regress_pw password=pw-secret sslcert=$tempdir/regress_cert.crt sslkey=$tempdir/regress_cert.key",
	'Unix socket, trust' => $node->connstr('postgres') . ' user=regress_app');
my %expected_mfa = (
	'cert method' => 't',
	'password and clientcert=verify-full' => 't',
	'password, certificate not required' => 'f',
	'Unix socket, trust' => 'f');
for my $login (sort keys %logins)
{
	is( $node->safe_psql(
			'postgres',
			'SELECT hipaa_guard.actor() = session_user, hipaa_guard.actor_mfa()',
			connstr => $logins{$login}),
		"t|$expected_mfa{$login}",
		"direct login, $login: actor is the login, second factor $expected_mfa{$login}");
}

# hipaa_guard.require_mfa: decrypt() needs the second factor, also in
# parallel workers, which read the leader's state from shared memory.
$node->safe_psql('postgres',
	'ALTER SYSTEM SET hipaa_guard.require_mfa = on; SELECT pg_reload_conf();');
$node->poll_query_until('postgres', 'SHOW hipaa_guard.require_mfa', 'on');
my $workers_only = q{
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
};
my $count = q{SELECT count(*) FROM charts WHERE hipaa_guard.decrypt(note) LIKE 'note %'};
my $plan = $node->safe_psql('postgres',
	"$workers_only EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $count",
	connstr => $logins{'cert method'});
like($plan, qr/Workers Launched: [1-9]/, 'parallel: workers launched');
like($plan, qr/Parallel Seq Scan on charts.*\n\s+Filter: \(hipaa_guard\.decrypt\(note\)/,
	'parallel: decrypt runs in the workers');
is($node->safe_psql('postgres', "$workers_only $count", connstr => $logins{'cert method'}),
	'2000', 'parallel, client certificate: workers decrypt');

my ($ret, $stdout, $stderr) = $node->psql('postgres', "$workers_only $count",
	connstr => $logins{'password, certificate not required'});
like($stderr, qr/ERROR:  decryption requires a second authentication factor/,
	'parallel, password only: refused');
like($stderr, qr/CONTEXT:  parallel worker/, 'parallel, password only: refused by a worker');

my $mfa_token = mint(claims(amr => [ 'pwd', 'otp' ]));
my $password_token = mint(claims(amr => ['pwd']));
is( $node->safe_psql(
		'postgres', qq{
BEGIN;
SELECT hipaa_guard.set_actor('$mfa_token') IS NOT NULL;
$workers_only
$count;
COMMIT;
}, extra_params => ['-U', 'regress_app']),
	"t\n2000",
	'parallel, token with a second factor: workers decrypt');
($ret, $stdout, $stderr) = $node->psql(
	'postgres', qq{
BEGIN;
SELECT hipaa_guard.set_actor('$password_token') IS NOT NULL;
$workers_only
$count;
}, extra_params => ['-U', 'regress_app']);
like($stderr, qr/ERROR:  decryption requires a second authentication factor\n.*\nHINT:.*\nCONTEXT:  parallel worker/s,
	'parallel, token with a password only: refused by a worker');
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET hipaa_guard.require_mfa; SELECT pg_reload_conf();');

# A database whose encoding is not UTF8 accepts ASCII claims only, and
# rejects others as a malformed token rather than with a conversion error.
$node->safe_psql('postgres',
	q{CREATE DATABASE latin1 ENCODING 'LATIN1' LOCALE 'C' TEMPLATE template0});
$node->safe_psql(
	'latin1', q{
CREATE EXTENSION hipaa_guard;
SELECT hipaa_guard.create_signing_key('app');
});
$secret = decode_base64url(
	$node->safe_psql('latin1', q{SELECT hipaa_guard.signing_secret('app')}));
is( $node->safe_psql(
		'latin1',
		"BEGIN; SELECT hipaa_guard.set_actor('" . mint(claims(sub => 'jose')) . "'); COMMIT;",
		extra_params => ['-U', 'regress_app']),
	'jose',
	'LATIN1 database: ASCII subject accepted');
for my $case ([ 'UTF-8 bytes', JSON::PP->new->canonical->utf8 ],
	[ 'escape', JSON::PP->new->canonical->ascii ])
{
	my ($name, $encoder) = @$case;
	my $input =
	  encode_base64url($encoder->encode({ alg => 'HS256', kid => 'app' })) . '.'
	  . encode_base64url($encoder->encode({ claims(sub => "jos\x{e9}") }));
	my $non_ascii = $input . '.' . encode_base64url(hmac_sha256($input, $secret));
	($ret, $stdout, $stderr) = $node->psql(
		'latin1', "BEGIN; SELECT hipaa_guard.set_actor('$non_ascii');",
		extra_params => ['-U', 'regress_app']);
	like(
		$stderr,
		qr/ERROR:  invalid actor token\nDETAIL:  Part 2 of the token contains non-ASCII characters/,
		"LATIN1 database: non-ASCII subject as $name rejected");
}

$node->stop;
done_testing();
