%% registry: S processes in G groups (S/G per group), Erlang's pg.
%%   join:    the bench process joins each process (pg:join/2, one call
%%            per process, as registry.lua registers one subject per call);
%%   members: K calls of pg:get_members/1 on groups of S/G members;
%%   delist:  kill every process, then until pg has no groups left.  pg
%%            delists a process when its server handles the 'DOWN', so we
%%            poll pg's table (named after the scope, one row per non-empty
%%            group) for size 0, yielding between polls so that pg and the
%%            dying processes run.
%%
%%   erl -noshell +S 1 -pa DIR -run registry main [S [G [K]]]
-module(registry).
-export([main/1]).

main(Args) ->
    S = bench:arg(Args, 1, 100000),
    G = bench:arg(Args, 2, 1000),
    K = bench:arg(Args, 3, 100000),
    {ok, _} = pg:start_link(),
    Pids = [spawn(fun idle/0) || _ <- lists:seq(1, S)],

    T0 = erlang:monotonic_time(),
    join(Pids, 1, G),
    JoinMs = bench:ms_since(T0),
    Per = S div G,
    Per = length(pg:get_members(1)),

    T1 = erlang:monotonic_time(),
    get_members(K, G),
    MembersMs = bench:ms_since(T1),

    T2 = erlang:monotonic_time(),
    [exit(P, kill) || P <- Pids],
    wait_empty(),
    DelistMs = bench:ms_since(T2),

    io:format("RESULT registry_join ~.3f us~n", [JoinMs * 1000 / S]),
    io:format("RESULT registry_members ~.3f us~n", [MembersMs * 1000 / K]),
    bench:result(registry_delist, DelistMs, ms),
    halt().

idle() -> receive stop -> ok end.

join([], _, _) -> ok;
join([P | Ps], I, G) -> ok = pg:join(I rem G, P), join(Ps, I + 1, G).

get_members(0, _) -> ok;
get_members(K, G) -> _ = pg:get_members(K rem G), get_members(K - 1, G).

wait_empty() ->
    case ets:info(pg, size) of
        0 -> ok;
        _ -> erlang:yield(), wait_empty()
    end.
