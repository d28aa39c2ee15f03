# preload.cmake - included from tests/CMakeLists.txt.
#
# 1. test_malloc_stress (tests/test_malloc_stress.c): its amount of work is
#    scaled with MHEAP_STRESS_SCALE (percent) in the sanitizer builds.
#
# 2. The LD_PRELOAD tests: real programs run with LD_PRELOAD=libmheap.so and
#    their output compared with the same run on the system allocator
#    (scripts in tests/preload/, helpers in tests/preload/common.sh):
#      preload_threads   tests/preload/threads.c, 8 threads (plain libc build)
#      preload_python    python3 with PYTHONMALLOC=malloc (if python3 exists)
#      preload_cc        the C compiler compiling a generated file, linking
#      preload_pipeline  coreutils pipelines under bash -c
#    They are skipped in sanitizer builds (MHEAP_SANITIZE): the sanitizer
#    runtimes replace malloc themselves and cannot share a process with a
#    preloaded allocator (and libmheap.so is then built instrumented).

if(TARGET test_malloc_stress)
  if(MHEAP_SANITIZE MATCHES "thread")
    set_tests_properties(test_malloc_stress PROPERTIES ENVIRONMENT "MHEAP_STRESS_SCALE=20")
  elseif(MHEAP_SANITIZE)
    set_tests_properties(test_malloc_stress PROPERTIES ENVIRONMENT "MHEAP_STRESS_SCALE=50")
  endif()
endif()

if(MHEAP_SANITIZE)
  message(STATUS "preload tests skipped: MHEAP_SANITIZE=${MHEAP_SANITIZE} "
                 "(a sanitizer runtime and LD_PRELOAD=libmheap.so do not mix)")
  return()
endif()

find_program(MHEAP_BASH bash)
if(NOT MHEAP_BASH)
  message(STATUS "preload tests skipped: bash not found")
  return()
endif()

set(MHEAP_PRELOAD_DIR ${CMAKE_CURRENT_LIST_DIR}/preload)
set(MHEAP_PRELOAD_WORK ${CMAKE_CURRENT_BINARY_DIR}/preload)
set(MHEAP_PRELOAD_TESTS "")

# ---- a threaded program built on the C library alone -----------------------
find_package(Threads REQUIRED)
add_executable(mheap_preload_threads ${MHEAP_PRELOAD_DIR}/threads.c)
# Only for mh_stats_t: the program is NOT linked with mheap.
target_include_directories(mheap_preload_threads PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(mheap_preload_threads PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
add_test(NAME preload_threads
  COMMAND ${MHEAP_BASH} ${MHEAP_PRELOAD_DIR}/threads.sh
    $<TARGET_FILE:mheap> $<TARGET_FILE:mheap_preload_threads> ${MHEAP_PRELOAD_WORK}/threads)
list(APPEND MHEAP_PRELOAD_TESTS preload_threads)

# ---- python3 -----------------------------------------------------------------
find_program(MHEAP_PYTHON3 python3)
if(MHEAP_PYTHON3)
  # Run the interpreter itself, not a wrapper (e.g. a pyenv shim script).
  execute_process(COMMAND ${MHEAP_PYTHON3} -c "import sys; print(sys.executable)"
    OUTPUT_VARIABLE MHEAP_PYTHON3_EXE OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE rc ERROR_QUIET)
  if(NOT rc EQUAL 0 OR NOT EXISTS "${MHEAP_PYTHON3_EXE}")
    set(MHEAP_PYTHON3_EXE ${MHEAP_PYTHON3})
  endif()
  add_test(NAME preload_python
    COMMAND ${MHEAP_BASH} ${MHEAP_PRELOAD_DIR}/python.sh
      $<TARGET_FILE:mheap> ${MHEAP_PYTHON3_EXE} ${MHEAP_PRELOAD_DIR}/workload.py
      ${MHEAP_PRELOAD_WORK}/python)
  list(APPEND MHEAP_PRELOAD_TESTS preload_python)
else()
  message(STATUS "preload_python skipped: python3 not found")
endif()

# ---- the C compiler --------------------------------------------------------------
add_test(NAME preload_cc
  COMMAND ${MHEAP_BASH} ${MHEAP_PRELOAD_DIR}/cc.sh
    $<TARGET_FILE:mheap> ${CMAKE_C_COMPILER} ${MHEAP_PRELOAD_WORK}/cc)
list(APPEND MHEAP_PRELOAD_TESTS preload_cc)

# ---- coreutils pipelines -----------------------------------------------------
set(missing "")
foreach(tool seq sort uniq awk tr cut sed wc sha256sum)
  find_program(MHEAP_TOOL_${tool} ${tool})
  if(NOT MHEAP_TOOL_${tool})
    list(APPEND missing ${tool})
  endif()
endforeach()
if(missing)
  message(STATUS "preload_pipeline skipped: not found: ${missing}")
else()
  add_test(NAME preload_pipeline
    COMMAND ${MHEAP_BASH} ${MHEAP_PRELOAD_DIR}/pipeline.sh
      $<TARGET_FILE:mheap> ${MHEAP_PRELOAD_WORK}/pipeline)
  list(APPEND MHEAP_PRELOAD_TESTS preload_pipeline)
endif()

set_tests_properties(${MHEAP_PRELOAD_TESTS} PROPERTIES TIMEOUT 120 LABELS preload)
