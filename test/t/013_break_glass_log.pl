# Break-glass access leaves one server log line that names the actor and
# the event but not the patient, and not the statement that holds the
# patient id, under PostgreSQL's default logging settings.
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
# The test framework logs every statement; a server holding ePHI does not.
my $node = start_node('glass', $key_file, conf => "log_statement = none\n");

my $patient = 'patient-7f3a91';
$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION hipaa_guard;
CREATE TABLE visits (id int PRIMARY KEY, patient text NOT NULL, note text);
INSERT INTO visits VALUES (1, '$patient', 'seen in the ED');
SELECT hipaa_guard.protect_table('visits', 'patient');
CREATE ROLE dr_grey LOGIN IN ROLE hipaa_clinician;
});

is($node->safe_psql('postgres', 'SHOW log_min_error_statement'),
	'error', 'default log_min_error_statement');

my $log_offset = -s $node->logfile;
my $seen = $node->safe_psql(
	'postgres', qq{
SELECT hipaa_guard.break_glass('$patient', 'Unconscious patient in the ED, allergy history needed');
SELECT count(*) FROM visits;
}, extra_params => [ '-U', 'dr_grey' ]);
like($seen, qr/^\d+\n1$/, 'break-glass opens the patient to the clinician');

ok($node->wait_for_log(qr/hipaa_guard: break-glass access by actor "dr_grey" \(login "dr_grey"\), event \d+/,
		$log_offset),
	'break-glass is logged with actor, login and event');
my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/\Q$patient\E/, 'the log does not name the patient');
unlike($log, qr/allergy history/, 'the log does not hold the reason');
unlike($log, qr/STATEMENT:.*break_glass/, 'the log does not hold the statement');

done_testing();
