# run.cmake: runs one fuzz target for ctest (tests/fuzz/CMakeLists.txt).
#   cmake -DEXE=... -DSEEDS=corpus/NAME -DWORK=dir -DRUNS=n -DMAX_LEN=n -P run.cmake
# WORK starts empty each time, so a run depends only on the seeds, the
# seed (-seed=1) and the code: the same failure comes back on a rerun.
if(NOT EXISTS "${SEEDS}")
  message(FATAL_ERROR "no seed corpus at ${SEEDS}")
endif()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/corpus")
execute_process(
  COMMAND "${EXE}" -runs=${RUNS} -seed=1 -max_len=${MAX_LEN} -timeout=10
          -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix=${WORK}/ "${WORK}/corpus" "${SEEDS}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} failed (${rc}); the input that broke it is in ${WORK}/")
endif()
