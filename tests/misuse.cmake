# misuse.cmake - included from tests/CMakeLists.txt.
#
# The misuse suite (tests/misuse/): for every class of heap misuse, what a
# build of the library does: stops it with its one line "mheap: <what>:
# <pointer>" and abort, is killed by a signal, or lets it pass.  The
# expectation table, tests/misuse/expect.txt, is the assertion: each class
# is its own CTest per build,
#   misuse_default_<class>   the cases under libmheap.so (target mheap)
#   misuse_secure_<class>    ... under libmheap-secure.so (target
#                            mheap_secure; registered only when it exists)
# labelled misuse and misuse_default / misuse_secure (ctest -L).  The case
# programs are plain executables (not linked with mheap): the driver runs
# each case with LD_PRELOAD of the build's .so.  misuse_table runs them all
# and prints the whole table with a summary per build; misuse_readme checks
# README.md's table against the expectations.
#
# Skipped when MHEAP_SANITIZE is set: a sanitizer runtime and a preloaded
# allocator do not share a process (as for the contract tests).

if(MHEAP_SANITIZE)
  message(STATUS "mheap: misuse suite skipped (MHEAP_SANITIZE=${MHEAP_SANITIZE} brings its own malloc)")
  return()
endif()

set(MISUSE_DIR ${CMAKE_CURRENT_LIST_DIR}/misuse)
set(MISUSE_EXPECT ${MISUSE_DIR}/expect.txt)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${MISUSE_EXPECT})

add_executable(misuse_cases ${MISUSE_DIR}/cases.c)
add_executable(misuse_cases_cxx ${MISUSE_DIR}/cases_cxx.cpp)
set_target_properties(misuse_cases_cxx PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
foreach(t misuse_cases misuse_cases_cxx)
  # The misuse must happen as written: no folding of a second free, no
  # memcpy inlined into stores the compiler may reorder or drop.
  target_compile_options(${t} PRIVATE -fno-builtin)
  target_link_libraries(${t} PRIVATE ${CMAKE_DL_LIBS})
endforeach()
add_executable(misuse_driver ${MISUSE_DIR}/driver.c)

set(MISUSE_ARGS --expect ${MISUSE_EXPECT}
  --cases $<TARGET_FILE:misuse_cases> --cxx $<TARGET_FILE:misuse_cases_cxx>
  --default-lib $<TARGET_FILE:mheap>)
set(MISUSE_MODES default)
if(TARGET mheap_secure)
  list(APPEND MISUSE_ARGS --secure-lib $<TARGET_FILE:mheap_secure>)
  list(APPEND MISUSE_MODES secure)
endif()

file(STRINGS ${MISUSE_EXPECT} MISUSE_LINES REGEX "^[a-z]")
foreach(line ${MISUSE_LINES})
  string(REGEX REPLACE " *\\|.*" "" cls "${line}")
  foreach(mode ${MISUSE_MODES})
    add_test(NAME misuse_${mode}_${cls} COMMAND misuse_driver ${MISUSE_ARGS} --run ${mode} ${cls})
    set_tests_properties(misuse_${mode}_${cls} PROPERTIES TIMEOUT 60 LABELS "misuse;misuse_${mode}")
  endforeach()
endforeach()

add_test(NAME misuse_table COMMAND misuse_driver ${MISUSE_ARGS} --all)
set_tests_properties(misuse_table PROPERTIES TIMEOUT 600 LABELS misuse)
add_test(NAME misuse_readme
  COMMAND misuse_driver --expect ${MISUSE_EXPECT} --check-readme ${PROJECT_SOURCE_DIR}/README.md)
set_tests_properties(misuse_readme PROPERTIES LABELS misuse)
