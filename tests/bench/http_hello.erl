%% http_hello: the Erlang side of the HTTP/1.1 keep-alive "hello"
%% benchmark (tests/bench/http_bench.sh), written the way an Erlang
%% engineer writes a small gen_tcp server: one acceptor, one process per
%% connection, {active, once} flow control, and the VM's own HTTP framing
%% ({packet, http_bin}), so requests are parsed in C as arbor's "line"
%% framing is.  Run with one scheduler (+S 1), as arbor has one thread.
%%
%%   erl -noshell +S 1 -pa DIR -run http_hello main PORT
-module(http_hello).
-export([main/1]).

-define(BODY, <<"hello">>).
-define(RESPONSE, <<"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    "Content-Length: 5\r\n\r\nhello">>).
-define(RESPONSE_CLOSE, <<"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                          "Content-Length: 5\r\nConnection: close\r\n\r\nhello">>).

main([PortArg]) ->
    Port = list_to_integer(PortArg),
    {ok, L} = gen_tcp:listen(Port, [binary, {packet, http_bin}, {active, false},
                                    {reuseaddr, true}, {backlog, 1024},
                                    {ip, {127, 0, 0, 1}}, {nodelay, true}]),
    io:format("http_hello on ~p~n", [Port]),
    accept(L).

accept(L) ->
    {ok, S} = gen_tcp:accept(L),
    Pid = spawn(fun() -> receive go -> ok end, session(S, true) end),
    ok = gen_tcp:controlling_process(S, Pid),
    Pid ! go,
    accept(L).

%% Waits for a request line, then reads its headers.
session(S, _Keep) ->
    ok = inet:setopts(S, [{active, once}]),
    receive
        {http, S, {http_request, _Method, _Uri, Version}} ->
            headers(S, Version =/= {1, 0});
        {http, S, {http_error, _}} -> gen_tcp:close(S);
        {tcp_closed, S} -> ok;
        {tcp_error, S, _} -> gen_tcp:close(S)
    end.

headers(S, Keep) ->
    ok = inet:setopts(S, [{active, once}]),
    receive
        {http, S, {http_header, _, 'Connection', _, Value}} ->
            headers(S, connection(string:lowercase(Value), Keep));
        {http, S, {http_header, _, _, _, _}} -> headers(S, Keep);
        {http, S, http_eoh} ->
            case Keep of
                true -> gen_tcp:send(S, ?RESPONSE), session(S, Keep);
                false -> gen_tcp:send(S, ?RESPONSE_CLOSE), gen_tcp:close(S)
            end;
        {http, S, {http_error, _}} -> gen_tcp:close(S);
        {tcp_closed, S} -> ok;
        {tcp_error, S, _} -> gen_tcp:close(S)
    end.

connection(<<"close">>, _) -> false;
connection(<<"keep-alive">>, _) -> true;
connection(_, Keep) -> Keep.
