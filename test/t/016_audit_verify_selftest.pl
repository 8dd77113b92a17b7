# The independent verifier's self-test (test/audit-verify-selftest), run
# with the TAP tests so that the suite covers the verifier's parser and
# checks on trails that the extension cannot produce on purpose.
use strict;
use warnings;

use FindBin;
use Test::More;

my $selftest = "$FindBin::RealBin/../audit-verify-selftest";
my $output = `$^X $selftest 2>&1`;
is($? >> 8, 0, 'audit-verify-selftest passes') or diag($output);
like($output, qr/^ok \d+/m, 'and ran its checks');

done_testing();
