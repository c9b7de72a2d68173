# Benchmark helpers built with the tests but not run by ctest (they measure, they do not assert).
add_executable(open_cost ${CMAKE_CURRENT_LIST_DIR}/open_cost.c)
embt_target_defaults(open_cost)
target_link_libraries(open_cost PRIVATE embt_static)
add_executable(lookup_rate ${CMAKE_CURRENT_LIST_DIR}/lookup_rate.c)
embt_target_defaults(lookup_rate)
target_link_libraries(lookup_rate PRIVATE embt_static)
add_executable(gather_rate ${CMAKE_CURRENT_LIST_DIR}/gather_rate.c)
embt_target_defaults(gather_rate)
target_link_libraries(gather_rate PRIVATE embt_static)
add_executable(similar_rate ${CMAKE_CURRENT_LIST_DIR}/similar_rate.c)
embt_target_defaults(similar_rate)
target_link_libraries(similar_rate PRIVATE embt_static)
# Physical references for the benchmark suite (tests/bench/run.sh), and its smoke run in ctest:
# tiny inputs, no peers, a few seconds, so that the suite does not rot.
add_executable(membw ${CMAKE_CURRENT_LIST_DIR}/membw.c)
embt_target_defaults(membw)
add_test(NAME bench.smoke
         COMMAND /bin/bash ${CMAKE_CURRENT_LIST_DIR}/run.sh --smoke --bin ${PROJECT_BINARY_DIR}
                 --out ${PROJECT_BINARY_DIR}/bench-smoke)
