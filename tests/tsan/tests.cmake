# tests/tsan/tests.cmake: in a ThreadSanitizer build (-DEMBT_SANITIZE_THREAD=ON, a build directory of
# its own), tsan.threads runs tsan_threads.c: many threads reading one open file, and the text
# importer's parallel parsing; any race report fails it. (The Criterion tests cannot run under TSan:
# Criterion aborts at start-up, Snaipe/Criterion#274.)
if(EMBT_SANITIZE_THREAD)
  add_executable(tsan_threads ${CMAKE_CURRENT_LIST_DIR}/tsan_threads.c)
  embt_target_defaults(tsan_threads)
  target_link_libraries(tsan_threads PRIVATE embt_static Threads::Threads m)
  add_test(NAME tsan.threads COMMAND tsan_threads)
  set_tests_properties(tsan.threads PROPERTIES
    ENVIRONMENT "TSAN_OPTIONS=halt_on_error=1:exitcode=66:second_deadlock_stack=1" TIMEOUT 900)
endif()
