# docpaths.cmake - included from tests/CMakeLists.txt.
#
# docs_paths: fails when README.md or docs/design.md names a file path in
# the repository that does not exist (tests/check_doc_paths.py prints each
# one with its document and line).

add_test(NAME docs_paths
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/check_doc_paths.py ${PROJECT_SOURCE_DIR}
    README.md docs/design.md)
