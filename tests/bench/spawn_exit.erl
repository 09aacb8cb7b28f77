%% spawn_exit: spawn N processes that return at once; time until all are
%% gone.  Same scheme as spawn_exit.lua: spawn N, monitor the last one,
%% wait for its DOWN, then wait (1 ms naps) until the process count is back
%% where it started (with +S 1 the run queue is FIFO, so the naps never run).
%%
%%   erl -noshell +S 1 -pa DIR -run spawn_exit main [N]
-module(spawn_exit).
-export([main/1]).

main(Args) ->
    N = bench:arg(Args, 1000000),
    Base = erlang:system_info(process_count),
    T0 = erlang:monotonic_time(),
    Last = spawn_n(N),
    Ref = monitor(process, Last),
    receive {'DOWN', Ref, process, Last, _} -> ok end,
    wait_count(Base),
    Ms = bench:ms_since(T0),
    bench:result(spawn_exit, Ms, ms),
    bench:result(spawn_exit_rate, N / (Ms / 1000), 'procs/s'),
    halt().

spawn_n(1) -> spawn(fun() -> ok end);
spawn_n(N) -> spawn(fun() -> ok end), spawn_n(N - 1).

wait_count(Base) ->
    case erlang:system_info(process_count) > Base of
        true -> receive after 1 -> wait_count(Base) end;
        false -> ok
    end.
