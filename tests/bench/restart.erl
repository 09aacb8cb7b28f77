%% restart: a one_for_one supervisor (restart_sup.erl) with one worker
%% that crashes on command; N crash -> restart cycles, each waiting for the
%% new child.  The worker is a plain linked process; on every start it
%% sends its pid to the bench process, which sends crash to it and waits
%% for the next one.
%%
%% Every BATCH cycles the supervisor is stopped and a fresh one started,
%% outside the timed part (restart.lua does the same).  OTP keeps each
%% supervisor's restart history as a list it walks on every restart, so
%% without fresh supervisors the figure would grow with N and measure the
%% history, not a restart.
%%
%% REPORTS 0: the logger is off (level none), as restart.lua turns arbor's
%% reports off.  REPORTS 1: the default handler writes every report (the
%% worker's crash and the supervisor's child_terminated) to stderr, as
%% arbor does, with the burst limit and the drop and flush modes off so
%% that no report is dropped.
%%
%%   erl -noshell +S 1 -pa DIR -run restart main [N [BATCH [REPORTS]]]
-module(restart).
-export([main/1, start_worker/1]).

main(Args) ->
    N = bench:arg(Args, 1, 100000),
    Batch = bench:arg(Args, 2, 100),
    case bench:arg(Args, 3, 0) of
        0 -> logger:set_primary_config(level, none);
        _ -> reports_to_stderr()
    end,
    Ms = batches(N, Batch, 0),
    bench:result(restart, Ms, ms),
    bench:result(restart_cycle, Ms * 1000 / N, us),
    halt().

reports_to_stderr() ->
    ok = logger:remove_handler(default),
    ok = logger:add_handler(default, logger_std_h,
                            #{config => #{type => standard_error,
                                          burst_limit_enable => false,
                                          drop_mode_qlen => 1000000000,
                                          flush_qlen => 1000000001}}).

%% Runs N cycles in batches under fresh supervisors; returns the timed ms.
batches(0, _, Ms) -> Ms;
batches(N, Batch, Ms) ->
    K = min(N, Batch),
    {ok, Sup} = restart_sup:start_link(self()),
    W = receive {started, P} -> P end,
    T0 = erlang:monotonic_time(),
    cycle(K, W),
    Ms1 = Ms + bench:ms_since(T0),
    stop(Sup),
    batches(N - K, Batch, Ms1).

stop(Sup) ->
    unlink(Sup),
    M = monitor(process, Sup),
    exit(Sup, shutdown),
    receive {'DOWN', M, process, Sup, _} -> ok end,
    %% the last worker, killed by the supervisor, may still say it started
    receive {started, _} -> ok after 0 -> ok end.

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
