%% copy: what message isolation costs (the same scheme as copy.lua).  A
%% sender sends N values to a receiver in bursts of 100 (the receiver
%% takes 100, then acks), so the copies become garbage as they are made.
%% Two values: a 10-field map (atom keys, binaries for strings) and a
%% list of 1,000 integers; Erlang copies each message into the receiver's
%% heap.  Time per message, in microseconds.
%%
%%   erl -noshell +S 1 -pa DIR -run copy main [N_RECORDS [N_ARRAYS]]
-module(copy).
-export([main/1]).

-define(BURST, 100).

main(Args) ->
    NRecords = bench:arg(Args, 1, 200000),
    NArrays = bench:arg(Args, 2, 20000),
    Record = #{name => <<"alice">>, email => <<"alice@example.com">>,
               city => <<"Oslo">>, zip => <<"0150">>, id => 123456,
               age => 34, visits => 1017, score => 97.5, active => true,
               role => <<"admin">>},
    Array = lists:seq(1, 1000),
    bench:result(copy_record, run(Record, rounded(NRecords)), us),
    bench:result(copy_array, run(Array, rounded(NArrays)), us),
    halt().

rounded(N) -> max(?BURST, N div ?BURST * ?BURST).

run(Value, N) ->
    Self = self(),
    Receiver = spawn(fun() -> receiver(Self) end),
    T0 = erlang:monotonic_time(),
    send_bursts(Receiver, Value, N div ?BURST),
    Ms = bench:ms_since(T0),
    exit(Receiver, kill),
    Ms * 1000 / N.

send_bursts(_, _, 0) -> ok;
send_bursts(Receiver, Value, K) ->
    send_n(Receiver, Value, ?BURST),
    receive ack -> ok end,
    send_bursts(Receiver, Value, K - 1).

send_n(_, _, 0) -> ok;
send_n(Receiver, Value, K) -> Receiver ! {msg, Value}, send_n(Receiver, Value, K - 1).

receiver(Ack) ->
    take(?BURST),
    Ack ! ack,
    receiver(Ack).

take(0) -> ok;
take(K) -> receive {msg, _} -> take(K - 1) end.
