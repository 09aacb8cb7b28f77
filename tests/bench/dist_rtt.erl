%% dist_rtt: message round trips between two nodes on this machine, the
%% Erlang half of the dist benchmark (tests/bench/dist_rtt.lua is arbor's:
%% the same echo node, the same messages, arbor as the other end).
%%
%%   erl -noshell -pa DIR -run dist_rtt main [N]
%%
%% Starts a second node (peer, with this folder on its code path) running
%% echo/0, then: N sequential round trips of an integer (latency), and N
%% messages with WINDOW of them in flight (messages/s: each echoed one
%% counts).  The echo node is also what arbor's half talks to:
%%
%%   erl -sname NAME -setcookie C -noshell -pa DIR -run dist_rtt echo_node PARENT
%%
%% registers `echo` and halts when PARENT's connection goes (or if it
%% never comes within 60 s), so a benchmark that dies leaves nothing.
-module(dist_rtt).
-export([main/1, echo/0, echo_node/1]).

-define(WINDOW, 64).

main(Args) ->
    N = bench:arg(Args, 100000),
    Id = os:getpid(),
    {ok, _} = net_kernel:start([list_to_atom("dbench_" ++ Id), shortnames]),
    Dir = filename:dirname(code:which(?MODULE)),
    {ok, Peer, Node} = peer:start_link(#{name => list_to_atom("decho_" ++ Id),
                                         args => ["-pa", Dir]}),
    Echo = spawn(Node, ?MODULE, echo, []),
    roundtrips(Echo, 1000), % warm up the connection
    T0 = erlang:monotonic_time(),
    roundtrips(Echo, N),
    Us = erlang:convert_time_unit(erlang:monotonic_time() - T0, native,
                                  microsecond),
    %% the peer's I/O is relayed to this node's; start the results on a
    %% line of their own
    io:format("~n"),
    bench:result(dist_rtt, Us / N, us),
    T1 = erlang:monotonic_time(),
    windowed(Echo, N),
    Ms = bench:ms_since(T1),
    bench:result(dist_rate, N / (max(Ms, 1) / 1000), 'msg/s'),
    peer:stop(Peer),
    halt().

roundtrips(_, 0) -> ok;
roundtrips(Echo, K) ->
    Echo ! {self(), K},
    receive K -> roundtrips(Echo, K - 1) end.

windowed(Echo, N) ->
    First = min(N, ?WINDOW),
    [Echo ! {self(), K} || K <- lists:seq(1, First)],
    windowed(Echo, N, First, 0).

windowed(_, N, _, N) -> ok;
windowed(Echo, N, Sent, Got) ->
    receive _ -> ok end,
    case Sent < N of
        true -> Echo ! {self(), Sent + 1}, windowed(Echo, N, Sent + 1, Got + 1);
        false -> windowed(Echo, N, Sent, Got + 1)
    end.

echo() ->
    receive
        {From, Msg} -> From ! Msg, echo();
        stop -> ok
    end.

echo_node([Parent]) ->
    register(echo, self()),
    P = list_to_atom(Parent),
    receive
        {From, Msg} ->
            monitor_node(P, true),
            From ! Msg,
            echo()
    after 60000 -> ok
    end,
    halt().
