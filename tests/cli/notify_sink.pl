#!/usr/bin/perl
# notify_sink.pl: a stand-in for systemd's notification socket, for
# test_notify.sh.  Perl from perl-base (Essential in Debian).
#
#   notify_sink.pl PATH     binds a datagram socket at PATH (or, for
#                           @NAME, the abstract name NAME), prints
#                           "listening", then one line per datagram with
#                           its "\n"-separated fields joined by "|";
#                           runs until killed
use strict;
use warnings;
use IO::Socket::UNIX;
use Socket qw(SOCK_DGRAM);

my $path = shift or die "usage: notify_sink.pl PATH\n";
my $local = $path =~ /^@(.+)$/ ? "\0$1" : $path;
my $sock = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $local)
  or die "notify_sink.pl: cannot bind $path: $!\n";
$| = 1;
print "listening\n";
while (1) {
  my $buf;
  defined $sock->recv($buf, 65536) or die "notify_sink.pl: recv: $!\n";
  $buf =~ s/\n\z//;
  $buf =~ s/\n/|/g;
  print "$buf\n";
}
