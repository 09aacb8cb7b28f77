%% bench: helpers shared by the Erlang benchmarks (argument parsing,
%% timing, the RESULT line that scripts/bench parses).
-module(bench).
-export([arg/2, arg/3, ms_since/1, result/3]).

%% The Ith command-line argument as an integer, or Default.
arg(Args, Default) -> arg(Args, 1, Default).
arg(Args, I, _Default) when length(Args) >= I ->
    list_to_integer(lists:nth(I, Args));
arg(_, _, Default) -> Default.

%% Milliseconds since a erlang:monotonic_time() reading, read the way
%% arbor's clock (arbor.core.now(), libuv's monotonic clock in whole ms)
%% reads: both ends truncated to the millisecond, so the two sides time
%% with the same kind of clock at the same resolution.
ms_since(T0) ->
    float(to_ms(erlang:monotonic_time()) - to_ms(T0)).

to_ms(T) -> erlang:convert_time_unit(T, native, millisecond).

result(Name, Value, Unit) ->
    io:format("RESULT ~s ~.3f ~s~n", [Name, float(Value), Unit]).
