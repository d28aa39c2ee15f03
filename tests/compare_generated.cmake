# compare_generated.cmake - checks that the checked-in size-class tables are
# what tools/mkclasses.c generates.  Run as a script (cmake -P); used by the
# test sizeclass_table_uptodate (see tests/sizeclass.cmake).
#
# Variables (pass with -D before -P):
#   MKCLASSES  path of the built mkclasses program
#   GEN_DIR    scratch directory to generate into (created; files overwritten)
#   SRC_DIR    directory holding the checked-in copies (the project's src/)
#
# Example, from the top of the source tree after a build in build/:
#   cmake -DMKCLASSES=build/tests/mkclasses -DGEN_DIR=/tmp/gen -DSRC_DIR=src \
#         -P tests/compare_generated.cmake

foreach(var MKCLASSES GEN_DIR SRC_DIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "compare_generated.cmake: set -D${var}=... (see the top of this file)")
  endif()
endforeach()

file(MAKE_DIRECTORY "${GEN_DIR}")
execute_process(
  COMMAND "${MKCLASSES}" "${GEN_DIR}"
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mkclasses failed (${rc}):\n${out}${err}")
endif()

set(stale "")
foreach(name sizeclass_table.h sizeclass_table.c)
  if(NOT EXISTS "${SRC_DIR}/${name}")
    list(APPEND stale "${name} (missing from ${SRC_DIR})")
    continue()
  endif()
  file(READ "${GEN_DIR}/${name}" generated)
  file(READ "${SRC_DIR}/${name}" checked_in)
  if(NOT generated STREQUAL checked_in)
    list(APPEND stale "${name}")
  endif()
endforeach()

if(stale)
  string(REPLACE ";" ", " stale "${stale}")
  message(FATAL_ERROR
    "The checked-in size-class tables are out of date: ${stale} "
    "differ(s) from what tools/mkclasses.c generates (see ${GEN_DIR}).\n"
    "Re-generate them by running `mkclasses src` from the top of the source "
    "tree, with the built mkclasses (${MKCLASSES}) or e.g.\n"
    "  cc -std=c11 -O2 tools/mkclasses.c -o /tmp/mkclasses && /tmp/mkclasses src\n"
    "and commit src/sizeclass_table.h and src/sizeclass_table.c with the change.")
endif()
message(STATUS "sizeclass tables in ${SRC_DIR} are up to date")
