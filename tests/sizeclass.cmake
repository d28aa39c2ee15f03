# sizeclass.cmake - included from tests/CMakeLists.txt.
#
# mkclasses: the size-class table generator (tools/mkclasses.c, libc only).
# sizeclass_table_uptodate: runs it into ${CMAKE_CURRENT_BINARY_DIR}/gen and
# fails unless the output matches src/sizeclass_table.{h,c} byte for byte
# (re-run `mkclasses src` from the top of the source tree to fix).

add_executable(mkclasses ${PROJECT_SOURCE_DIR}/tools/mkclasses.c)
set_target_properties(mkclasses PROPERTIES
  C_STANDARD 11
  C_STANDARD_REQUIRED ON
  C_EXTENSIONS OFF)

add_test(NAME sizeclass_table_uptodate
  COMMAND ${CMAKE_COMMAND}
    -DMKCLASSES=$<TARGET_FILE:mkclasses>
    -DGEN_DIR=${CMAKE_CURRENT_BINARY_DIR}/gen
    -DSRC_DIR=${PROJECT_SOURCE_DIR}/src
    -P ${CMAKE_CURRENT_LIST_DIR}/compare_generated.cmake)
