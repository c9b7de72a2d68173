# tests/headers/tests.cmake: ctest headers.self_contained. Every public header compiles alone as strict
# C11 and as C++11 (when a C++ compiler exists), and the umbrella header includes every module header.
find_program(EMBT_CXX_FOR_HEADERS NAMES g++ c++ clang++)
set(EMBT_HEADERS_CXX "")
if(EMBT_CXX_FOR_HEADERS)
  set(EMBT_HEADERS_CXX ${EMBT_CXX_FOR_HEADERS})
endif()
add_test(NAME headers.self_contained
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/self_contained.sh
                 ${PROJECT_SOURCE_DIR}/lib/include ${CMAKE_CURRENT_BINARY_DIR}/headers
                 ${CMAKE_C_COMPILER} "${EMBT_HEADERS_CXX}")
set_tests_properties(headers.self_contained PROPERTIES ENVIRONMENT "${EMBT_TEST_ENV}" TIMEOUT 120)
