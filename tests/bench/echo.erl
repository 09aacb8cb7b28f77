%% echo: TCP echo throughput on 127.0.0.1, server and clients in one VM
%% (the same scheme as echo.lua): CONNS client processes each send
%% TOTAL_MB / CONNS in 16 KiB blocks, waiting for each block to come back
%% whole; the server runs a process per connection ({active, once}) that
%% sends back what it receives.
%%
%%   erl -noshell +S 1 -pa DIR -run echo main [CONNS] [TOTAL_MB]
-module(echo).
-export([main/1]).

-define(BLOCK, 16384).

main(Args) ->
    Conns = bench:arg(Args, 1, 1),
    TotalMb = bench:arg(Args, 2, 64),
    Blocks = (TotalMb * 1024 * 1024) div ?BLOCK div Conns,
    {ok, L} = gen_tcp:listen(0, [binary, {active, false}, {backlog, 1024},
                                 {ip, {127, 0, 0, 1}}, {reuseaddr, true}, {nodelay, true}]),
    {ok, Port} = inet:port(L),
    Server = spawn(fun() -> accept(L) end),
    ok = gen_tcp:controlling_process(L, Server),
    Block = binary:copy(<<"e">>, ?BLOCK),
    Self = self(),
    T0 = erlang:monotonic_time(),
    [spawn(fun() -> client(Port, Block, Blocks), Self ! done end)
     || _ <- lists:seq(1, Conns)],
    [receive done -> ok end || _ <- lists:seq(1, Conns)],
    Ms = bench:ms_since(T0),
    Mb = Blocks * Conns * ?BLOCK / (1024 * 1024),
    bench:result(echo_rate, Mb / (Ms / 1000), 'MB/s'),
    halt().

accept(L) ->
    {ok, S} = gen_tcp:accept(L),
    Pid = spawn(fun() -> receive go -> ok end, session(S) end),
    ok = gen_tcp:controlling_process(S, Pid),
    Pid ! go,
    accept(L).

session(S) ->
    ok = inet:setopts(S, [{active, once}]),
    receive
        {tcp, S, Data} -> gen_tcp:send(S, Data), session(S);
        {tcp_closed, S} -> ok
    end.

client(Port, Block, Blocks) ->
    {ok, C} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}, {nodelay, true}]),
    loop(C, Block, Blocks),
    gen_tcp:close(C).

loop(_, _, 0) -> ok;
loop(C, Block, N) ->
    ok = gen_tcp:send(C, Block),
    recv(C, ?BLOCK),
    loop(C, Block, N - 1).

recv(_, 0) -> ok;
recv(C, Left) ->
    {ok, Data} = gen_tcp:recv(C, 0),
    recv(C, Left - byte_size(Data)).
