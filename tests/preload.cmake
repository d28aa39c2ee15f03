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
#    Each runs twice: with libmheap.so, and as <name>_secure with the secure
#    build, libmheap-secure.so (preload_add below).
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

# preload_add(NAME WORK ARGS...): the test NAME running ARGS with LIB in
# them replaced by the library and WORK by its work directory, once for
# libmheap.so and once, as NAME_secure, for libmheap-secure.so.
function(preload_add name work)
  set(names "")
  foreach(variant "" _secure)
    if(variant)
      set(lib $<TARGET_FILE:mheap_secure>)
    else()
      set(lib $<TARGET_FILE:mheap>)
    endif()
    set(cmd "")
    foreach(a ${ARGN})
      if(a STREQUAL "LIB")
        list(APPEND cmd ${lib})
      elseif(a STREQUAL "WORK")
        list(APPEND cmd ${MHEAP_PRELOAD_WORK}/${work}${variant})
      else()
        list(APPEND cmd ${a})
      endif()
    endforeach()
    add_test(NAME ${name}${variant} COMMAND ${cmd})
    list(APPEND names ${name}${variant})
  endforeach()
  set(MHEAP_PRELOAD_TESTS ${MHEAP_PRELOAD_TESTS} ${names} PARENT_SCOPE)
endfunction()

# ---- a threaded program built on the C library alone -----------------------
find_package(Threads REQUIRED)
add_executable(mheap_preload_threads ${MHEAP_PRELOAD_DIR}/threads.c)
# Only for mh_stats_t: the program is NOT linked with mheap.
target_include_directories(mheap_preload_threads PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(mheap_preload_threads PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
preload_add(preload_threads threads
  ${MHEAP_BASH} ${MHEAP_PRELOAD_DIR}/threads.sh LIB $<TARGET_FILE:mheap_preload_threads> WORK)

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
  preload_add(preload_python python
    ${MHEAP_BASH} ${MHEAP_PRELOAD_DIR}/python.sh LIB ${MHEAP_PYTHON3_EXE}
      ${MHEAP_PRELOAD_DIR}/workload.py WORK)
else()
  message(STATUS "preload_python skipped: python3 not found")
endif()

# ---- the C compiler --------------------------------------------------------------
preload_add(preload_cc cc ${MHEAP_BASH} ${MHEAP_PRELOAD_DIR}/cc.sh LIB ${CMAKE_C_COMPILER} WORK)

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
  preload_add(preload_pipeline pipeline ${MHEAP_BASH} ${MHEAP_PRELOAD_DIR}/pipeline.sh LIB WORK)
endif()

set_tests_properties(${MHEAP_PRELOAD_TESTS} PROPERTIES TIMEOUT 120 LABELS preload)
