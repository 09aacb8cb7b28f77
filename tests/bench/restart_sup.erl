%% restart_sup: a plain one_for_one supervisor with one permanent worker
%% (restart:start_worker/1) and an intensity that never gives up.
-module(restart_sup).
-behaviour(supervisor).
-export([start_link/1, init/1]).

start_link(Bench) -> supervisor:start_link(?MODULE, Bench).

init(Bench) ->
    Flags = #{strategy => one_for_one, intensity => 1000000, period => 1},
    Child = #{id => worker, start => {restart, start_worker, [Bench]},
              restart => permanent, shutdown => brutal_kill, type => worker},
    {ok, {Flags, [Child]}}.
