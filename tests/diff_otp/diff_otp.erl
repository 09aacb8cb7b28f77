%% diff_otp.erl: the Erlang/OTP half of the differential test
%% (tests/diff_otp/run.sh; interp.lua is the arbor half).
%%
%%   erl -noshell +S 1 -pa DIR -eval 'diff_otp:main(["SCENARIOS.terms", "TRACE"])'
%%
%% runs every scenario that gen.lua wrote and writes one line per step of
%% what can be observed, in the same format as interp.lua: after the
%% set-up and after each step, "<id>.<step> <result> <state>".
%%
%% Supervision trees are real OTP supervisors (this module is their
%% callback) with real worker processes; the state is each child in id
%% order as c<i>=<R|S|W><times started>, a running nested tree followed by
%% its children in brackets, or down:<reason> once the root gave up.
%% Processes are plain processes driven by messages; the state is each
%% one's liveness and the exits and DOWNs it received during the step,
%% sorted.  Reasons are normalised ({shutdown, _} is shutdown_tuple).
%%
%% Nothing waits for time.  One scheduler (+S 1) makes the VM run one
%% process at a time, as arbor does; a step ends when its effects have
%% settled: the driver waits for the DOWN of a process it ended, then
%% asks every process in rounds until one shows nothing new, and retries
%% (polling with a deadline) while a supervisor still lists a dead child.
%%
%% One deliberate mapping: link/1 to a dead pid by a process that does
%% not trap exits raises noproc in Erlang; arbor's contract returns false
%% instead, so the call is caught here.
-module(diff_otp).
-export([main/1, init/1, start_worker/1, start_sup/2]).

-define(PERIOD, 3600).

main([TermsFile, OutFile]) ->
    try
        {ok, Scenarios} = file:consult(TermsFile),
        logger:set_primary_config(level, none), % no supervisor reports
        process_flag(trap_exit, true),
        ets:new(diff_otp_counts, [named_table, public, set]),
        Lines = lists:flatmap(fun run/1, Scenarios),
        ok = file:write_file(OutFile, [[L, $\n] || L <- Lines]),
        halt(0)
    catch
        Class:Reason:Stack ->
            io:format(standard_error, "diff_otp: ~p:~p~n~p~n",
                      [Class, Reason, Stack]),
            halt(1)
    end.

run({scenario, Id, {sup, Tree}, Steps}) -> run_sup(Id, Tree, Steps);
run({scenario, Id, {procs, Traps}, Steps}) -> run_procs(Id, Traps, Steps).

line(Id, K, Result, State) ->
    lists:flatten(io_lib:format("~b.~b ~s ~s", [Id, K, Result, State])).

reason_name({shutdown, _}) -> "shutdown_tuple";
reason_name(R) when is_atom(R) -> atom_to_list(R);
reason_name(R) -> lists:flatten(io_lib:format("~p", [R])).

reason_value(shutdown_tuple) -> {shutdown, tuple};
reason_value(R) -> R.

%% {====== Supervision trees

%% The supervisor callback: a tree {Strategy, Max, Children} at Path.
init({tree, {Strategy, Max, Children}, Path}) ->
    Specs = [child_spec(C, Path ++ [I])
             || {I, C} <- lists:zip(lists:seq(1, length(Children)),
                                    Children)],
    {ok, {#{strategy => Strategy, intensity => Max, period => ?PERIOD},
          Specs}}.

id(I) -> list_to_atom("c" ++ integer_to_list(I)).

child_spec({worker, Restart}, Path) ->
    #{id => id(lists:last(Path)), start => {?MODULE, start_worker, [Path]},
      restart => Restart, type => worker};
child_spec({sup, Restart, Tree}, Path) ->
    #{id => id(lists:last(Path)), start => {?MODULE, start_sup, [Tree, Path]},
      restart => Restart, type => supervisor}.

count_start(Path) ->
    ets:update_counter(diff_otp_counts, Path, 1, {Path, 0}).

starts(Path) ->
    case ets:lookup(diff_otp_counts, Path) of
        [{_, N}] -> N;
        [] -> 0
    end.

start_worker(Path) ->
    count_start(Path),
    {ok, spawn_link(fun worker/0)}.

worker() ->
    receive
        {exit, normal} -> ok;
        {exit, R} -> exit(reason_value(R))
    end.

start_sup(Tree, Path) ->
    count_start(Path),
    supervisor:start_link(?MODULE, {tree, Tree, Path}).

id_number(Id) -> list_to_integer(tl(atom_to_list(Id))).

%% which_children sorted by id, or gone.
children_of(Sup) ->
    case catch supervisor:which_children(Sup) of
        L when is_list(L) ->
            lists:sort(fun({A, _, _, _}, {B, _, _, _}) ->
                               id_number(A) =< id_number(B)
                       end, L);
        _ -> gone
    end.

%% The state of the tree under Sup (at Path), or unsettled.
render(Sup, Path) ->
    case children_of(Sup) of
        gone -> unsettled;
        List -> render_children(List, Path, [])
    end.

render_children([], _Path, Acc) ->
    "[" ++ lists:join(",", lists:reverse(Acc)) ++ "]";
render_children([{Id, Child, Type, _} | Rest], Path, Acc) ->
    P = Path ++ [id_number(Id)],
    Head = atom_to_list(Id) ++ "=",
    N = integer_to_list(starts(P)),
    case Child of
        undefined -> render_children(Rest, Path, [Head ++ "S" ++ N | Acc]);
        restarting -> render_children(Rest, Path, [Head ++ "W" ++ N | Acc]);
        Pid when is_pid(Pid) ->
            case is_process_alive(Pid) of
                false -> unsettled;
                true when Type =:= supervisor ->
                    case render(Pid, P) of
                        unsettled -> unsettled;
                        Inner ->
                            render_children(Rest, Path,
                                            [Head ++ "R" ++ N ++ Inner | Acc])
                    end;
                true -> render_children(Rest, Path, [Head ++ "R" ++ N | Acc])
            end
    end.

tree_state(Root) -> tree_state(Root, 2000).

tree_state(_Root, 0) -> "unsettled";
tree_state(Root, Tries) ->
    case get(root_reason) of
        undefined ->
            case is_process_alive(Root) of
                false ->
                    receive
                        {'EXIT', Root, R} -> put(root_reason, reason_name(R))
                    after 1000 -> ok
                    end,
                    tree_state(Root, Tries - 1);
                true ->
                    case render(Root, []) of
                        unsettled -> timer:sleep(1), tree_state(Root, Tries - 1);
                        S -> lists:flatten(S)
                    end
            end;
        R -> "down:" ++ R
    end.

%% The supervisor at Path (a list of child positions), or none.
find_sup(Root, Path) ->
    case get(root_reason) =:= undefined andalso is_process_alive(Root) of
        false -> none;
        true -> find_sup_in(Root, Path)
    end.

find_sup_in(Sup, []) -> Sup;
find_sup_in(Sup, [I | Rest]) ->
    case find_child(Sup, I) of
        {_, Pid, supervisor, _} when is_pid(Pid) -> find_sup_in(Pid, Rest);
        _ -> none
    end.

find_child(Sup, I) ->
    case children_of(Sup) of
        gone -> none;
        List -> lists:keyfind(id(I), 1, List)
    end.

sup_step(Root, {exit, Path, Reason}) ->
    {Parent, [I]} = lists:split(length(Path) - 1, Path),
    case find_sup(Root, Parent) of
        none -> "skip";
        Sup ->
            case find_child(Sup, I) of
                {_, Pid, _, _} when is_pid(Pid) ->
                    Ref = monitor(process, Pid),
                    case Reason of
                        kill -> exit(Pid, kill);
                        _ -> Pid ! {exit, Reason}
                    end,
                    receive {'DOWN', Ref, process, Pid, _} -> "exit"
                    after 10000 -> error({no_down, Path})
                    end;
                _ -> "skip"
            end
    end;
sup_step(Root, {Op, Path, I}) ->
    case find_sup(Root, Path) of
        none -> "skip";
        Sup ->
            Result = case Op of
                         term -> supervisor:terminate_child(Sup, id(I));
                         restart -> supervisor:restart_child(Sup, id(I))
                     end,
            case Result of
                ok -> "ok";
                {ok, _} -> "ok";
                {ok, _, _} -> "ok";
                {error, E} when is_atom(E) -> atom_to_list(E);
                {error, _} -> "error"
            end
    end.

run_sup(Id, Tree, Steps) ->
    ets:delete_all_objects(diff_otp_counts),
    erase(root_reason),
    {ok, Root} = supervisor:start_link(?MODULE, {tree, Tree, []}),
    First = line(Id, 0, "start", tree_state(Root)),
    {Lines, _} =
        lists:mapfoldl(
          fun(Step, K) ->
                  Result = case get(root_reason) of
                               undefined -> sup_step(Root, Step);
                               _ -> "skip"
                           end,
                  {line(Id, K, Result, tree_state(Root)), K + 1}
          end, 1, Steps),
    case is_process_alive(Root) of
        true ->
            Ref = monitor(process, Root),
            unlink(Root),
            exit(Root, shutdown),
            receive {'DOWN', Ref, process, Root, _} -> ok
            after 10000 -> error(root_did_not_stop)
            end;
        false -> ok
    end,
    flush(),
    [First | Lines].

flush() ->
    receive _ -> flush() after 0 -> ok end.

%% }======

%% {====== Processes, links, monitors and signals

actor(I, Trap, Driver) ->
    process_flag(trap_exit, Trap),
    actor_loop(I, Driver).

actor_loop(I, D) ->
    receive
        {'EXIT', From, R} -> D ! {obs, I, "EXIT", From, R};
        {'DOWN', _, process, From, R} -> D ! {obs, I, "DOWN", From, R};
        ping -> D ! {pong, I};
        {link, P} -> catch link(P), D ! {ack, I};
        {unlink, P} -> unlink(P), D ! {ack, I};
        {monitor, P} -> monitor(process, P), D ! {ack, I};
        {signal, P, R} -> exit(P, reason_value(R)), D ! {ack, I};
        {die, normal} -> exit(normal);
        {die, R} -> exit(reason_value(R));
        {trap, B} -> process_flag(trap_exit, B), D ! {ack, I}
    end,
    actor_loop(I, D).

%% The driver's view: pids, monitor refs, alive/dead, observations.
-record(procs, {pids, names, alive, dead, obs}).

run_procs(Id, Traps, Steps) ->
    Self = self(),
    N = length(Traps),
    Pids = [spawn(fun() -> actor(I, T, Self) end)
            || {I, T} <- lists:zip(lists:seq(1, N), Traps)],
    [monitor(process, P) || P <- Pids],
    Idx = lists:seq(1, N),
    St0 = #procs{pids = list_to_tuple(Pids),
                 names = maps:from_list(lists:zip(Pids, Idx)),
                 alive = maps:from_list([{I, true} || I <- Idx]),
                 dead = #{},
                 obs = maps:from_list([{I, []} || I <- Idx])},
    St1 = settle(St0),
    {First, St2} = procs_state(St1),
    {Lines, St3} =
        lists:mapfoldl(
          fun({Step, K}, St) ->
                  {Result, StA} = procs_step(Step, St),
                  {S, StB} = procs_state(StA),
                  {line(Id, K, Result, S), StB}
          end, St2, lists:zip(Steps, lists:seq(1, length(Steps)))),
    lists:foldl(fun(I, St) ->
                        case maps:get(I, St#procs.alive) of
                            true -> exit(element(I, St#procs.pids), kill);
                            false -> ok
                        end,
                        await(I, never, St)
                end, St3, Idx),
    flush(),
    [line(Id, 0, "start", First) | Lines].

procs_step(Step, St) ->
    Op = element(1, Step),
    A = element(2, Step),
    case maps:get(A, St#procs.alive) of
        false -> {"skip", St};
        true ->
            Pid = element(A, St#procs.pids),
            Msg = case Step of
                      {signal, _, B, R} ->
                          {signal, element(B, St#procs.pids), R};
                      {Link, _, B} when Link =:= link; Link =:= unlink;
                                        Link =:= monitor ->
                          {Link, element(B, St#procs.pids)};
                      {Other, _, X} -> {Other, X}
                  end,
            Pid ! Msg,
            {atom_to_list(Op), settle(await(A, ack, St))}
    end.

%% Takes the driver's next message and files it.
take(St) ->
    receive
        {obs, I, Kind, From, R} ->
            Name = case maps:find(From, St#procs.names) of
                       {ok, J} -> "p" ++ integer_to_list(J);
                       error -> "?"
                   end,
            O = Kind ++ Name ++ ":" ++ reason_name(R),
            {obs, St#procs{obs = maps:update_with(I, fun(L) -> [O | L] end,
                                                 St#procs.obs)}};
        {'DOWN', _, process, Pid, R} ->
            I = maps:get(Pid, St#procs.names),
            {{down, I}, St#procs{alive = maps:put(I, false, St#procs.alive),
                                 dead = maps:put(I, reason_name(R),
                                                 St#procs.dead)}};
        {Kind, I} when Kind =:= ack; Kind =:= pong ->
            {{Kind, I}, St}
    after 10000 ->
            error(driver_timeout)
    end.

%% Waits until actor I has answered (Kind) or died.
await(I, Kind, St) ->
    case maps:get(I, St#procs.alive) of
        false -> St;
        true ->
            case take(St) of
                {{Kind, I}, St1} -> St1;
                {_, St1} -> await(I, Kind, St1)
            end
    end.

progress(St) ->
    lists:sum([length(L) || L <- maps:values(St#procs.obs)])
        + length([x || false <- maps:values(St#procs.alive)]).

%% Rounds of pings until one shows nothing new.
settle(St) ->
    Before = progress(St),
    St1 = lists:foldl(
            fun(I, S) ->
                    case maps:get(I, S#procs.alive) of
                        true ->
                            element(I, S#procs.pids) ! ping,
                            await(I, pong, S);
                        false -> S
                    end
            end, St, lists:seq(1, tuple_size(St#procs.pids))),
    case progress(St1) of
        Before -> St1;
        _ -> settle(St1)
    end.

procs_state(St) ->
    Parts = [begin
                 Life = case maps:get(I, St#procs.alive) of
                            true -> "up";
                            false -> "dead:" ++ maps:get(I, St#procs.dead)
                        end,
                 Obs = lists:join(";", lists:sort(maps:get(I, St#procs.obs))),
                 lists:flatten(["p", integer_to_list(I), "=", Life, "{", Obs,
                                "}"])
             end || I <- lists:seq(1, tuple_size(St#procs.pids))],
    {lists:join(" ", Parts),
     St#procs{obs = maps:map(fun(_, _) -> [] end, St#procs.obs)}}.

%% }======
