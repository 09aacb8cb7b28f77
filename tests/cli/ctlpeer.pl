#!/usr/bin/perl
# ctlpeer.pl: the other end of arbor's control socket, for test_control.sh:
# raw clients that send what `arbor status` never would, and servers that
# misbehave.  Perl from perl-base (Essential in Debian), IO::Socket::UNIX.
# Every wait is bounded; nothing here sleeps to let time pass.
#
#   send PATH [--shut]   sends stdin's bytes as they are (--shut: then
#                        half-closes), prints the answer up to EOF; exit 3
#                        if none within 10 s
#   hold PATH N          opens N connections that send nothing, prints
#                        "held N", waits for a line on stdin, then reads
#                        each to EOF (10 s at most) and prints one line
#                        per connection: the answer with "\n" as " | "
#   silent PATH          listens, prints "listening", accepts and reads
#                        but never answers; runs until killed
#   hangup PATH          listens, prints "listening", closes every
#                        connection as soon as it is accepted
#   closed-stdout CMD... runs CMD with stdout a pipe nobody reads (its
#                        read end closed first); exits with CMD's status,
#                        or 128+N if a signal N ended it
use strict;
use warnings;
use IO::Socket::UNIX;
use IO::Select;
use Socket qw(SOCK_STREAM SHUT_WR);

$| = 1;
my $mode = shift @ARGV or die "usage: ctlpeer.pl MODE ...\n";

sub connect_to {
  my ($path) = @_;
  my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $path)
    or die "ctlpeer: cannot connect to $path: $!\n";
  return $sock;
}

# Reads $sock to EOF by $deadline (epoch seconds); undef on timeout.
sub read_all {
  my ($sock, $deadline) = @_;
  my $sel = IO::Select->new($sock);
  my $text = '';
  while (1) {
    my $left = $deadline - time;
    return undef if $left <= 0;
    next unless $sel->can_read($left);
    my $n = sysread($sock, my $chunk, 65536);
    return $text if !defined $n || $n == 0;   # EOF (or reset): done
    $text .= $chunk;
  }
}

sub listen_on {
  my ($path) = @_;
  my $srv = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => $path,
                                  Listen => 64)
    or die "ctlpeer: cannot listen on $path: $!\n";
  print "listening\n";
  return $srv;
}

if ($mode eq 'send') {
  my ($path, $shut) = @ARGV;
  my $bytes = do { local $/; binmode STDIN; <STDIN> };
  my $sock = connect_to($path);
  binmode $sock;
  syswrite($sock, $bytes) if length $bytes;
  shutdown($sock, SHUT_WR) if defined $shut && $shut eq '--shut';
  my $text = read_all($sock, time + 10);
  exit 3 unless defined $text;
  print $text;
  exit 0;
} elsif ($mode eq 'hold') {
  my ($path, $n) = @ARGV;
  my @socks = map { connect_to($path) } 1 .. $n;
  print "held $n\n";
  my $go = <STDIN>;
  for my $s (@socks) {
    my $text = read_all($s, time + 10);
    if (defined $text) {
      $text =~ s/\n/ | /g;
      print "answer: $text\n";
    } else {
      print "no answer\n";
    }
  }
  exit 0;
} elsif ($mode eq 'silent') {
  my $srv = listen_on($ARGV[0]);
  my @keep;
  while (my $c = $srv->accept) {
    push @keep, $c;   # read nothing, answer nothing, keep it open
  }
} elsif ($mode eq 'hangup') {
  my $srv = listen_on($ARGV[0]);
  while (my $c = $srv->accept) {
    close $c;
  }
} elsif ($mode eq 'closed-stdout') {
  pipe(my $r, my $w) or die "ctlpeer: pipe: $!\n";
  close $r;
  my $pid = fork() // die "ctlpeer: fork: $!\n";
  if ($pid == 0) {
    open(STDOUT, '>&', $w) or die "ctlpeer: dup: $!\n";
    $SIG{PIPE} = 'DEFAULT';   # as a shell would start it
    exec @ARGV or die "ctlpeer: exec $ARGV[0]: $!\n";
  }
  close $w;
  waitpid($pid, 0);
  exit(($? & 127) ? 128 + ($? & 127) : $? >> 8);
} else {
  die "ctlpeer: unknown mode '$mode'\n";
}
