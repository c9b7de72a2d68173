# Benchmark helpers built with the tests but not run by ctest (they measure, they do not assert).
add_executable(open_cost ${CMAKE_CURRENT_LIST_DIR}/open_cost.c)
embt_target_defaults(open_cost)
target_link_libraries(open_cost PRIVATE embt_static)
add_executable(lookup_rate ${CMAKE_CURRENT_LIST_DIR}/lookup_rate.c)
embt_target_defaults(lookup_rate)
target_link_libraries(lookup_rate PRIVATE embt_static)
