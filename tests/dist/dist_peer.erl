%% dist_peer: the Erlang side of arbor's dist tests (tests/dist/run.sh).
%%
%% Registered as `peer`.  A test sends {eval, ReplyTo, Code}: Code is
%% Erlang expressions (a binary, ending with "."), evaluated in a fresh
%% process with the bindings ReplyTo (the test's subject, a pid) and
%% Arbor (the arbor node's name); the value goes back as {ok, Value}, or
%% {error, Class, Reason}.  Nothing here sleeps: evaluations that wait do
%% so in `receive`, for messages the test sends.
%%
%% Also registered: `echo`, which answers {From, T} with
%% {T, term_to_binary(T)}, so a test sees both how a term came back and
%% the bytes Erlang itself makes of it.
-module(dist_peer).
-export([start/0, eval/3]).

start() ->
    %% A bound on its life, should run.sh itself be killed (ctest's
    %% timeout is 120 s): never a synchronisation.
    spawn(fun() -> receive after 180000 -> halt() end end),
    register(echo, spawn(fun echo/0)),
    register(peer, self()),
    {ok, _} = pg:start_link(),
    {ok, _} = pg:start_link(arbor_scope),
    loop().

loop() ->
    receive
        {eval, ReplyTo, Code} when is_pid(ReplyTo) ->
            spawn(?MODULE, eval, [ReplyTo, Code, node(ReplyTo)]),
            loop();
        _ ->
            loop()
    end.

echo() ->
    receive
        {From, T} when is_pid(From) -> From ! {T, term_to_binary(T)};
        _ -> ok
    end,
    echo().

eval(ReplyTo, Code, Arbor) ->
    Result =
        try
            {ok, Tokens, _} = erl_scan:string(unicode:characters_to_list(Code)),
            {ok, Exprs} = erl_parse:parse_exprs(Tokens),
            Bindings = erl_eval:add_binding('ReplyTo', ReplyTo,
                         erl_eval:add_binding('Arbor', Arbor,
                           erl_eval:new_bindings())),
            {value, Value, _} = erl_eval:exprs(Exprs, Bindings),
            {ok, Value}
        catch
            Class:Reason -> {error, Class, Reason}
        end,
    ReplyTo ! Result.
