# tests/install/tests.cmake: embt as its users see it. Builds examples/loader.c against the shared
# library (ctest example.loader), installs the build into a temporary prefix and builds outside
# consumers through find_package and pkg-config (install.consumers), and keeps the README's library
# example identical to examples/loader.c (docs.readme_example).

add_executable(example_loader ${PROJECT_SOURCE_DIR}/examples/loader.c)
set_target_properties(example_loader PROPERTIES OUTPUT_NAME loader)
embt_target_defaults(example_loader)
target_link_libraries(example_loader PRIVATE embt)

add_test(NAME example.loader
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/loader.sh $<TARGET_FILE:example_loader>)
set_tests_properties(example.loader PROPERTIES ENVIRONMENT "${EMBT_TEST_ENV}" TIMEOUT 120)

# A sanitizer build installs instrumented libraries: their consumers must be built the same way.
set(EMBT_CONSUMER_FLAGS "")
if(EMBT_SANITIZE)
  set(EMBT_CONSUMER_FLAGS "-fsanitize=address,undefined -fno-sanitize-recover=all")
endif()
add_test(NAME install.consumers COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/consumers.sh)
set_tests_properties(install.consumers PROPERTIES
  ENVIRONMENT "${EMBT_TEST_ENV};CMAKE_COMMAND=${CMAKE_COMMAND};CC=${CMAKE_C_COMPILER};PKG_CONFIG=${PKG_CONFIG_EXECUTABLE};EMBT_CONSUMER_FLAGS=${EMBT_CONSUMER_FLAGS};EMBT_VERSION=${PROJECT_VERSION}"
  TIMEOUT 600)

add_test(NAME docs.readme_example COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/readme_example.sh)
set_tests_properties(docs.readme_example PROPERTIES ENVIRONMENT "${EMBT_TEST_ENV}" TIMEOUT 60)
