%% ring: P processes in a ring pass one message (an integer) R times
%% around: P * R hops.  Each process forwards what it gets to the next;
%% the first decrements the count on each lap and tells the bench process
%% when it reaches zero.  Building the ring is not timed.  Same as ring.lua.
%%
%%   erl -noshell +S 1 -pa DIR -run ring main [P [R]]
-module(ring).
-export([main/1]).

main(Args) ->
    Size = bench:arg(Args, 1, 10000),
    Rounds = bench:arg(Args, 2, 1000),
    Self = self(),
    Head = spawn(fun() -> first(Self) end),
    Next = build(Size - 1, Head),
    Head ! {next, Next},
    T0 = erlang:monotonic_time(),
    Head ! Rounds,
    receive done -> ok end,
    Ms = bench:ms_since(T0),
    bench:result(ring, Ms, ms),
    bench:result(ring_rate, Size * Rounds / (Ms / 1000), 'msgs/s'),
    halt().

%% Each new process forwards to the one spawned before it.
build(0, Next) -> Next;
build(K, Next) -> build(K - 1, spawn(fun() -> forward(Next) end)).

forward(Next) ->
    receive K -> Next ! K end,
    forward(Next).

first(Done) ->
    receive {next, Next} -> first(Done, Next) end.

first(Done, Next) ->
    receive
        0 -> Done ! done;
        K -> Next ! K - 1, first(Done, Next)
    end.
