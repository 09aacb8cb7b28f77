%% pingpong: two processes, N round trips of an integer.  Each knows the
%% other's pid from the start, so a message is just the integer (the same
%% as pingpong.lua).
%%
%%   erl -noshell +S 1 -pa DIR -run pingpong main [N]
-module(pingpong).
-export([main/1]).

main(Args) ->
    N = bench:arg(Args, 1000000),
    Self = self(),
    Pong = spawn(fun() -> receive {ping, Ping} -> pong(Ping) end end),
    Ping = spawn(fun() -> receive go -> ping(Pong, N - 1), Self ! done end end),
    Pong ! {ping, Ping},
    T0 = erlang:monotonic_time(),
    Ping ! go,
    receive done -> ok end,
    Ms = bench:ms_since(T0),
    bench:result(pingpong, Ms, ms),
    bench:result(pingpong_rate, N / (Ms / 1000), 'trips/s'),
    halt().

pong(Ping) ->
    receive
        0 -> Ping ! 0;
        K -> Ping ! K, pong(Ping)
    end.

ping(Pong, K) ->
    Pong ! K,
    receive K -> ok end,
    case K of
        0 -> ok;
        _ -> ping(Pong, K - 1)
    end.
