# Helpers shared by the TAP tests: master key files and a started node that
# preloads hipaa_guard with such a key.
package HipaaGuardTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT_OK = qw(write_random_key start_node restart_with_key_settings);

# Write 64 random hex characters (a 256-bit master key) to a file of mode
# 0600, as the server requires.
sub write_random_key
{
	my ($path) = @_;

	open my $random, '<:raw', '/dev/urandom'
	  or die "could not open /dev/urandom: $!";
	read($random, my $bytes, 32) == 32
	  or die "could not read 32 bytes from /dev/urandom";
	close $random;
	open my $fh, '>', $path or die "could not create $path: $!";
	chmod 0600, $path or die "could not chmod $path: $!";
	print $fh unpack('H*', $bytes);
	close $fh or die "could not write $path: $!";
	return;
}

# Create, configure and start a node that preloads hipaa_guard (and any
# other libraries named in $libraries) with the master key in $key_file.
# $extra_conf is appended to postgresql.conf.
sub start_node
{
	my ($name, $key_file, %options) = @_;
	my $libraries = $options{libraries} // 'hipaa_guard';
	my $extra_conf = $options{conf} // '';
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init(%{ $options{init} // {} });
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = '$libraries'
hipaa_guard.master_key_file = '$key_file'
$extra_conf
});
	$node->start;
	return $node;
}

# Replace the master key settings with the given ones and restart.  The
# settings live in an included file, so that each case starts from none.
sub restart_with_key_settings
{
	my ($node, %settings) = @_;
	my $path = $node->data_dir . '/hipaa_guard_key.conf';
	my $lines = '';

	for my $name (sort keys %settings)
	{
		$lines .= "hipaa_guard.$name = '$settings{$name}'\n";
	}
	unlink $path;
	PostgreSQL::Test::Utils::append_to_file($path, $lines);
	$node->restart;
	return;
}

1;
