%% idle_conn: N idle TCP connections and the memory each costs the
%% server (the same scheme as idle_conn.lua): a process per accepted
%% connection ({active, once}, {packet, line}) after one short line has
%% gone each way; the clients are another OS process
%% (idle_conn_client.py).  Memory is the VM's resident set (VmRSS) once
%% all N have answered, minus before, divided by N.
%%
%%   erl -noshell +S 1 -pa DIR -run idle_conn main [N] [CLIENT]
-module(idle_conn).
-export([main/1]).

main(Args) ->
    N = bench:arg(Args, 10000),
    Client = case Args of [_, C | _] -> C; _ -> "tests/bench/idle_conn_client.py" end,
    {ok, L} = gen_tcp:listen(0, [binary, {packet, line}, {active, false},
                                 {backlog, 4096}, {ip, {127, 0, 0, 1}},
                                 {reuseaddr, true}]),
    {ok, Port} = inet:port(L),
    Self = self(),
    Server = spawn(fun() -> receive go -> ok end, accept(L, Self) end),
    ok = gen_tcp:controlling_process(L, Server),
    Server ! go,
    Before = rss(),
    T0 = erlang:monotonic_time(),
    os:cmd(io_lib:format("python3 ~s ~b ~b >/dev/null 2>&1 &", [Client, Port, N])),
    [receive answered -> ok end || _ <- lists:seq(1, N)],
    Ms = bench:ms_since(T0),
    After = rss(),
    bench:result(idle_conn_setup, Ms, ms),
    bench:result(idle_conn_memory, (After - Before) / N, 'bytes/conn'),
    halt().

accept(L, Main) ->
    {ok, S} = gen_tcp:accept(L),
    Pid = spawn(fun() -> receive go -> ok end, session(S, Main) end),
    ok = gen_tcp:controlling_process(S, Pid),
    Pid ! go,
    accept(L, Main).

session(S, Main) ->
    ok = inet:setopts(S, [{active, once}]),
    receive {tcp, S, _Line} -> ok = gen_tcp:send(S, <<"hello\n">>) end,
    Main ! answered,
    ok = inet:setopts(S, [{active, once}]),
    receive {tcp_closed, S} -> ok end.

rss() ->
    [erlang:garbage_collect(P) || P <- processes()],
    {ok, Status} = file:read_file("/proc/self/status"),
    {match, [Kb]} = re:run(Status, "VmRSS:\\s*(\\d+)", [{capture, all_but_first, binary}]),
    binary_to_integer(Kb) * 1024.
