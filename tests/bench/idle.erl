%% idle: spawn N processes that block in receive; the time until all of
%% them are blocked, and the memory they hold (erlang:memory(total) after
%% minus before, divided by N).  Same scheme as idle.lua: the last process
%% spawned tells the bench process when it is blocked.
%%
%%   erl -noshell +S 1 -pa DIR -run idle main [N]
-module(idle).
-export([main/1]).

main(Args) ->
    N = bench:arg(Args, 100000),
    Self = self(),
    Before = memory(),
    T0 = erlang:monotonic_time(),
    spawn_n(N - 1),
    spawn(fun() -> Self ! ready, idle() end),
    receive ready -> ok end,
    Ms = bench:ms_since(T0),
    After = memory(),
    bench:result(idle_spawn, Ms, ms),
    bench:result(idle_memory, (After - Before) / N, 'bytes/proc'),
    halt().

idle() -> receive stop -> ok end.

spawn_n(0) -> ok;
spawn_n(N) -> spawn(fun idle/0), spawn_n(N - 1).

memory() ->
    erlang:garbage_collect(),
    erlang:memory(total).
