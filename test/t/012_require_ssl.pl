# hipaa_guard.require_ssl: once it is on, members of the hipaa_guard group
# roles must connect with TLS.  The server gets a real certificate, made here
# with the openssl command and signed by a throwaway CA, and listens on
# 127.0.0.1 only, where every role logs in with a password (SCRAM).  The
# test's own superuser connections use the Unix socket, with trust.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use HipaaGuardTest qw(write_random_key start_node);

my $password = 'fake-test-password';

# Make a CA and a server certificate for 127.0.0.1 signed by it, in $dir.
# The server requires its key file to have mode 0600 or stricter.
sub make_certificates
{
	my ($dir) = @_;

	system_or_bail(
		'openssl', 'req', '-new', '-x509', '-nodes',
		'-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
		'-days', '2', '-subj', '/CN=hipaa_guard test CA',
		'-addext', 'basicConstraints=critical,CA:TRUE',
		'-addext', 'keyUsage=critical,keyCertSign,cRLSign',
		'-keyout', "$dir/ca.key", '-out', "$dir/ca.crt");
	system_or_bail(
		'openssl', 'req', '-new', '-nodes',
		'-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
		'-subj', '/CN=127.0.0.1',
		'-keyout', "$dir/server.key", '-out', "$dir/server.csr");
	PostgreSQL::Test::Utils::append_to_file("$dir/server.ext",
		"subjectAltName = IP:127.0.0.1\n"
		  . "basicConstraints = CA:FALSE\n"
		  . "extendedKeyUsage = serverAuth\n");
	system_or_bail(
		'openssl', 'x509', '-req', '-in', "$dir/server.csr",
		'-CA', "$dir/ca.crt", '-CAkey', "$dir/ca.key", '-set_serial', '1',
		'-days', '2', '-extfile', "$dir/server.ext",
		'-out', "$dir/server.crt");
	chmod 0600, "$dir/server.key", "$dir/ca.key"
	  or die "could not chmod the key files: $!";
	return;
}

# Return a connection string for $user over TCP/IP to 127.0.0.1.
sub tcp_connstr
{
	my ($node, $user, $options) = @_;

	return 'host=127.0.0.1 port=' . $node->port
	  . " dbname=postgres user=$user password=$password $options";
}

# Run $sql through the Unix socket as $user; return psql's stderr.
sub psql_error_as
{
	my ($node, $user, $sql) = @_;
	my ($stdout, $stderr);

	$node->psql(
		'postgres', $sql,
		stdout => \$stdout,
		stderr => \$stderr,
		extra_params => [ '-U', $user, '-v', 'VERBOSITY=verbose' ]);
	return $stderr;
}

# Turn hipaa_guard.require_ssl on or off with ALTER SYSTEM and a reload, and
# wait until new sessions see it.
sub set_require_ssl
{
	my ($node, $value) = @_;

	$node->safe_psql('postgres',
		"ALTER SYSTEM SET hipaa_guard.require_ssl = $value");
	$node->reload;
	$node->poll_query_until('postgres', 'SHOW hipaa_guard.require_ssl',
		$value)
	  or die "hipaa_guard.require_ssl did not become $value";
	return;
}

my $cert_dir = PostgreSQL::Test::Utils::tempdir;
make_certificates($cert_dir);
my $key_file = "$cert_dir/master.key";
write_random_key($key_file);

my $node = start_node(
	'require_ssl', $key_file,
	conf => qq{
listen_addresses = '127.0.0.1'
ssl = on
ssl_cert_file = '$cert_dir/server.crt'
ssl_key_file = '$cert_dir/server.key'
password_encryption = 'scram-sha-256'
});
unlink $node->data_dir . '/pg_hba.conf';
$node->append_conf(
	'pg_hba.conf', qq{
local all all trust
host all all 127.0.0.1/32 scram-sha-256
});
$node->reload;

# regress_clinician: a clinician, who must use TLS once the setting is on.
# regress_nurse: a clinician through the team role regress_ward.
# regress_admin: a key administrator, who must use TLS too.
# regress_plain: in no group role, never affected.
# regress_super: a superuser in no group role, never affected.
$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION hipaa_guard;
CREATE ROLE regress_clinician LOGIN PASSWORD '$password';
SELECT hipaa_guard.grant_group('regress_clinician', 'hipaa_clinician');
CREATE ROLE regress_ward NOLOGIN;
SELECT hipaa_guard.grant_group('regress_ward', 'hipaa_clinician');
CREATE ROLE regress_nurse LOGIN PASSWORD '$password' IN ROLE regress_ward;
CREATE ROLE regress_admin LOGIN PASSWORD '$password';
SELECT hipaa_guard.grant_group('regress_admin', 'hipaa_admin');
CREATE ROLE regress_plain LOGIN PASSWORD '$password';
CREATE ROLE regress_super LOGIN SUPERUSER PASSWORD '$password';
});

my $ssl_query = 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()';
my $rejected = qr/FATAL:  connection without TLS rejected for role "regress_clinician"/;
my $unix_socket_connstr = 'host=' . $node->host . ' port=' . $node->port
  . ' dbname=postgres user=regress_clinician';

# Off, the default: nothing changes.
is($node->safe_psql('postgres', 'SHOW hipaa_guard.require_ssl'),
	'off', 'default is off');
$node->connect_ok(
	tcp_connstr($node, 'regress_clinician', 'sslmode=disable'),
	'off: member without TLS accepted',
	sql => $ssl_query,
	expected_stdout => qr/^f$/);
$node->connect_ok($unix_socket_connstr,
	'off: member through the Unix socket accepted');

# On: members need TLS.
set_require_ssl($node, 'on');
$node->connect_fails(
	tcp_connstr($node, 'regress_clinician', 'sslmode=disable'),
	'on: member without TLS rejected',
	expected_stderr => $rejected,
	log_like => [$rejected]);
$node->connect_fails(
	tcp_connstr($node, 'regress_clinician', 'sslmode=disable'),
	'on: rejection detail and hint',
	expected_stderr =>
	  qr/DETAIL:  hipaa_guard.require_ssl is on, and role "regress_clinician" is a member of "hipaa_clinician"\.\nHINT:  Connect with sslmode=require or stronger\./
);
$node->connect_ok(
	tcp_connstr($node, 'regress_clinician', 'sslmode=require sslrootcert=invalid'),
	'on: member with sslmode=require accepted',
	sql => $ssl_query,
	expected_stdout => qr/^t$/);
$node->connect_ok(
	tcp_connstr($node, 'regress_clinician',
		"sslmode=verify-full sslrootcert=$cert_dir/ca.crt"),
	'on: member with sslmode=verify-full accepted',
	sql => $ssl_query,
	expected_stdout => qr/^t$/);
$node->connect_fails(
	tcp_connstr($node, 'regress_nurse', 'sslmode=disable'),
	'on: member through another role rejected',
	expected_stderr =>
	  qr/FATAL:  connection without TLS rejected for role "regress_nurse"\nDETAIL:  [^\n]*"regress_nurse" is a member of "hipaa_clinician"/
);
$node->connect_ok(
	tcp_connstr($node, 'regress_nurse', 'sslmode=require sslrootcert=invalid'),
	'on: member through another role with TLS accepted',
	sql => $ssl_query,
	expected_stdout => qr/^t$/);
$node->connect_fails(
	tcp_connstr($node, 'regress_admin', 'sslmode=disable'),
	'on: hipaa_admin member without TLS rejected',
	expected_stderr => qr/is a member of "hipaa_admin"/);
$node->connect_ok(
	tcp_connstr($node, 'regress_plain', 'sslmode=disable'),
	'on: non-member without TLS accepted',
	sql => $ssl_query,
	expected_stdout => qr/^f$/);
$node->connect_ok(
	tcp_connstr($node, 'regress_super', 'sslmode=disable'),
	'on: superuser that is not a member accepted',
	sql => $ssl_query,
	expected_stdout => qr/^f$/);

# A Unix-domain socket cannot carry TLS, so members cannot use it.
$node->connect_fails(
	$unix_socket_connstr,
	'on: member through the Unix socket rejected',
	expected_stderr =>
	  qr/$rejected.*HINT:  Connect over TCP\/IP with sslmode=require or stronger, because Unix-domain sockets cannot use TLS\./s
);

# The check runs before the session's own settings apply.
$node->connect_fails(
	tcp_connstr(
		$node, 'regress_clinician',
		"sslmode=disable options='-c hipaa_guard.require_ssl=off'"),
	'on: setting turned off in the connection request still rejected',
	expected_stderr => $rejected);

# Only the server configuration changes the setting.
like(
	psql_error_as($node, 'regress_plain', 'SET hipaa_guard.require_ssl = off'),
	qr/ERROR:  55P02: parameter "hipaa_guard.require_ssl" cannot be changed now/,
	'SET by a non-superuser rejected');
like(
	psql_error_as(
		$node, 'regress_plain', 'ALTER SYSTEM SET hipaa_guard.require_ssl = off'),
	qr/ERROR:  42501: permission denied to set parameter "hipaa_guard.require_ssl"/,
	'ALTER SYSTEM by a non-superuser rejected');
like(
	psql_error_as(
		$node, 'regress_plain', 'ALTER ROLE regress_plain SET hipaa_guard.require_ssl = off'),
	qr/ERROR:  55P02: parameter "hipaa_guard.require_ssl" cannot be changed now/,
	'ALTER ROLE SET by a non-superuser rejected');
like(
	psql_error_as($node, 'postgres', 'SET hipaa_guard.require_ssl = off'),
	qr/ERROR:  55P02: parameter "hipaa_guard.require_ssl" cannot be changed now/,
	'SET by a superuser rejected');
is($node->safe_psql('postgres', 'SHOW hipaa_guard.require_ssl'),
	'on', 'still on after the rejected changes');

# Without shared_preload_libraries nothing is checked, and a session that
# loads the library says so.
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
$node->connect_ok(
	tcp_connstr($node, 'regress_clinician', 'sslmode=disable'),
	'not preloaded: member without TLS accepted');
like(
	psql_error_as($node, 'postgres', "LOAD 'hipaa_guard'"),
	qr/WARNING:  55000: hipaa_guard.require_ssl is on but not enforced/,
	'not preloaded: LOAD warns');
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_guard'");
$node->restart;
$node->connect_fails(
	tcp_connstr($node, 'regress_clinician', 'sslmode=disable'),
	'preloaded again: member without TLS rejected',
	expected_stderr => $rejected);

# Off again, with a reload.
set_require_ssl($node, 'off');
$node->connect_ok(
	tcp_connstr($node, 'regress_clinician', 'sslmode=disable'),
	'off again: member without TLS accepted',
	sql => $ssl_query,
	expected_stdout => qr/^f$/);

$node->stop;
done_testing();
