"""The relay's program: the one process beside the agent on `internal` that reaches the proxy.

It runs in a container of the runner image (`runner.egress` starts it) as
`perl -e RELAY_SCRIPT -- LISTEN TARGET`.
"""

# One process per connection, both directions copied as they come (SSE stays
# unbuffered), half-closes passed on. Core perl only: the runner image has it.
RELAY_SCRIPT = r"""
use strict; use warnings;
use IO::Socket::INET; use IO::Select; use Socket qw(IPPROTO_TCP TCP_NODELAY); use POSIX ();
$SIG{CHLD} = 'IGNORE'; $SIG{PIPE} = 'IGNORE'; $| = 1;
my ($listen, $target) = @ARGV;
my $server = IO::Socket::INET->new(LocalAddr => $listen, Listen => 256, ReuseAddr => 1)
  or die "relay: cannot listen on $listen: $!\n";
print "relay: $listen -> $target\n";
while (1) {
  my $client = $server->accept or next;
  my $pid = fork;
  if (!defined $pid || $pid) { close $client; next }
  close $server;
  my $up = IO::Socket::INET->new(PeerAddr => $target, Timeout => 10) or POSIX::_exit(1);
  setsockopt($_, IPPROTO_TCP, TCP_NODELAY, 1) for ($client, $up);
  my %other = ($client => $up, $up => $client);
  my $select = IO::Select->new($client, $up);
  while ($select->count) {
    for my $from ($select->can_read) {
      my $to = $other{$from};
      my $n = sysread($from, my $buffer, 65536);
      if (!$n) { $select->remove($from); shutdown($to, 1); next }
      my $done = 0;
      while ($done < $n) {
        my $wrote = syswrite($to, $buffer, $n - $done, $done);
        POSIX::_exit(0) if !defined $wrote;
        $done += $wrote;
      }
    }
  }
  POSIX::_exit(0);
}
"""
