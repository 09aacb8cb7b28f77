%% restart: a one_for_one supervisor (restart_sup.erl) with one worker
%% that crashes on command; N crash -> restart cycles, each waiting for the
%% new child.  The worker is a plain linked process; on every start it
%% sends its pid to the bench process, which sends crash to it and waits
%% for the next one.  The logger is off (level none), as restart.lua turns
%% arbor's reports off.
%%
%%   erl -noshell +S 1 -pa DIR -run restart main [N]
-module(restart).
-export([main/1, start_worker/1]).

main(Args) ->
    N = bench:arg(Args, 100000),
    logger:set_primary_config(level, none),
    {ok, _Sup} = restart_sup:start_link(self()),
    W = receive {started, P} -> P end,
    T0 = erlang:monotonic_time(),
    cycle(N, W),
    Ms = bench:ms_since(T0),
    bench:result(restart, Ms, ms),
    bench:result(restart_cycle, Ms * 1000 / N, us),
    halt().

cycle(0, _) -> ok;
cycle(K, W) ->
    W ! crash,
    receive {started, W2} -> cycle(K - 1, W2) end.

%% The child's start function, called by the supervisor.
start_worker(Bench) ->
    {ok, spawn_link(fun() ->
                            Bench ! {started, self()},
                            receive crash -> error(crash) end
                    end)}.
