# tests/fuzz/tests.cmake: the fuzz targets. Always: one replay driver per target (replay.c + the
# target, any compiler) registered as ctest fuzz.<target>, running the seed corpus and every saved
# reproducer of regressions/<target>/. With EMBT_BUILD_FUZZERS (clang): the libFuzzer binaries
# fuzz_<target>, run by tests/fuzz/run.sh.
set(EMBT_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
set(EMBT_FUZZ_TARGETS embt meta text roundtrip word2vec_bin fasttext_bin npy npz safetensors json
                      export config model eval resume)

# Seeds: the conformance corpus for the reader (its .yaml expectations are YAML seeds for meta),
# hand-written inputs in seeds/<target>/ for the others.
set(EMBT_FUZZ_SEEDS_embt ${PROJECT_SOURCE_DIR}/format/valid ${PROJECT_SOURCE_DIR}/format/invalid)
set(EMBT_FUZZ_SEEDS_meta ${PROJECT_SOURCE_DIR}/format/valid ${EMBT_FUZZ_DIR}/seeds/meta)
set(EMBT_FUZZ_SEEDS_text ${EMBT_FUZZ_DIR}/seeds/text)
set(EMBT_FUZZ_SEEDS_roundtrip ${EMBT_FUZZ_DIR}/seeds/roundtrip)
foreach(t word2vec_bin fasttext_bin npy npz safetensors json export config model eval resume)
  set(EMBT_FUZZ_SEEDS_${t} ${EMBT_FUZZ_DIR}/seeds/${t})
endforeach()

# What a target needs beyond the library: the config reader is the CLI's
# (tools/cli_train_config.c); the resume target trains on the corpus its seeds were trained on.
function(embt_fuzz_target_needs target t)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/lib/src)
  target_link_libraries(${target} PRIVATE embt_static m)
  if(t STREQUAL "config")
    target_link_libraries(${target} PRIVATE embt_cli)
  endif()
  if(t STREQUAL "resume")
    target_compile_definitions(${target} PRIVATE
      EMBT_FUZZ_CORPUS="${PROJECT_SOURCE_DIR}/tests/fixtures/classify/train.txt")
  endif()
endfunction()

foreach(t ${EMBT_FUZZ_TARGETS})
  add_executable(fuzz_replay_${t} ${EMBT_FUZZ_DIR}/replay.c ${EMBT_FUZZ_DIR}/fuzz_${t}.c)
  embt_target_defaults(fuzz_replay_${t})
  embt_fuzz_target_needs(fuzz_replay_${t} ${t})
  file(GLOB regressions CONFIGURE_DEPENDS ${EMBT_FUZZ_DIR}/regressions/${t}/*)
  add_test(NAME fuzz.${t} COMMAND fuzz_replay_${t} ${EMBT_FUZZ_SEEDS_${t}} ${regressions})
  set_tests_properties(fuzz.${t} PROPERTIES TIMEOUT 600)

  if(EMBT_BUILD_FUZZERS)
    add_executable(fuzz_${t} ${EMBT_FUZZ_DIR}/fuzz_${t}.c)
    embt_target_defaults(fuzz_${t})
    embt_fuzz_target_needs(fuzz_${t} ${t})
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
  endif()
endforeach()

# FORMAT.md 10: small files declaring huge sizes fail fast within 256 MiB (tests/fuzz/limits.sh).
if(EMBT_BUILD_TESTS)
  if(EMBT_SANITIZE OR EMBT_BUILD_FUZZERS)
    set(EMBT_LIMITS_MODE sanitized)
  else()
    set(EMBT_LIMITS_MODE "")
  endif()
  add_test(NAME fuzz.limits COMMAND ${EMBT_FUZZ_DIR}/limits.sh $<TARGET_FILE:embt_tool>
                                    ${PROJECT_SOURCE_DIR} ${EMBT_LIMITS_MODE})
  set_tests_properties(fuzz.limits PROPERTIES TIMEOUT 900)
endif()
