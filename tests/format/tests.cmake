# tests/format/tests.cmake: the conformance corpus checks that need no C: format.validate_cli runs the real
# `embt validate --format=json` on every format/ sample (exit codes, status and rule); format.regenerate
# rebuilds the corpus with format/generate.py and compares it byte for byte (skipped without python3).
add_test(NAME format.validate_cli
         COMMAND /bin/sh ${PROJECT_SOURCE_DIR}/tests/format/check_cli.sh $<TARGET_FILE:embt_tool>
                 ${PROJECT_SOURCE_DIR})
set_tests_properties(format.validate_cli PROPERTIES ENVIRONMENT "${EMBT_TEST_ENV}" TIMEOUT 300)
add_test(NAME format.regenerate COMMAND /bin/sh ${PROJECT_SOURCE_DIR}/tests/format/regenerate.sh
                                        ${PROJECT_SOURCE_DIR})
set_tests_properties(format.regenerate PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
