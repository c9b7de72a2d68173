# tests/cli/tests.cmake: runs the real `embt` binary for exit codes 0/1/2 and a clean stdout on
# errors (tests/cli/exit_codes.sh), end to end: convert, info, validate, meta get/set, help.
add_test(NAME cli.exit_codes
         COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/exit_codes.sh $<TARGET_FILE:embt_tool>)
set_tests_properties(cli.exit_codes PROPERTIES ENVIRONMENT "${EMBT_TEST_ENV}" TIMEOUT 120)
