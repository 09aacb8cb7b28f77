%% bench: helpers shared by the Erlang benchmarks (argument parsing,
%% timing, the RESULT line that scripts/bench parses).
-module(bench).
-export([arg/2, arg/3, ms_since/1, result/3]).

%% The Ith command-line argument as an integer, or Default.
arg(Args, Default) -> arg(Args, 1, Default).
arg(Args, I, _Default) when length(Args) >= I ->
    list_to_integer(lists:nth(I, Args));
arg(_, _, Default) -> Default.

%% Milliseconds (float) since a erlang:monotonic_time() reading.
ms_since(T0) ->
    erlang:convert_time_unit(erlang:monotonic_time() - T0, native,
                             nanosecond) / 1.0e6.

result(Name, Value, Unit) ->
    io:format("RESULT ~s ~.1f ~s~n", [Name, float(Value), Unit]).
