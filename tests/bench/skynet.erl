%% skynet: a tree of N processes (N a power of 10) with 10 children per
%% node; each leaf sends its number, each inner node sums its children's
%% and sends that to its parent.  The figure is the time from the first
%% spawn until the root's sum (0 + 1 + ... + N-1, checked) arrives.  Same
%% scheme as skynet.lua.  With N = 1,000,000 about 1.1 million processes
%% are alive at the peak, over OTP's default limit: run it with +P.
%%
%%   erl -noshell +S 1 +P 4000000 -pa DIR -run skynet main [N]
-module(skynet).
-export([main/1]).

main(Args) ->
    N = bench:arg(Args, 1, 1000000),
    true = is_power_of_10(N),
    Self = self(),
    T0 = erlang:monotonic_time(),
    spawn(fun() -> skynet(Self, 0, N) end),
    Sum = receive {sum, S} -> S end,
    Ms = bench:ms_since(T0),
    Sum = N * (N - 1) div 2,
    bench:result(skynet, Ms, ms),
    halt().

is_power_of_10(1) -> true;
is_power_of_10(N) when N rem 10 =:= 0 -> is_power_of_10(N div 10);
is_power_of_10(_) -> false.

skynet(Parent, Num, 1) ->
    Parent ! {sum, Num};
skynet(Parent, Num, Size) ->
    Step = Size div 10,
    Self = self(),
    [spawn(fun() -> skynet(Self, Num + I * Step, Step) end)
     || I <- lists:seq(0, 9)],
    Parent ! {sum, collect(10, 0)}.

collect(0, Acc) -> Acc;
collect(K, Acc) -> receive {sum, S} -> collect(K - 1, Acc + S) end.
