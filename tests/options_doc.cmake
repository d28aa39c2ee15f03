# options_doc.cmake - included from tests/CMakeLists.txt.
#
# test_options_doc (tests/test_options_doc.c) compares README.md's table of
# options with the option table in src/options.h.  It reads the README
# named by its first argument; the test CTest adds for it runs it without
# one, so the README's path in the source tree is compiled in as
# MHEAP_README, used when no argument is given.
if(TARGET test_options_doc)
  target_compile_definitions(test_options_doc PRIVATE
    MHEAP_README="${PROJECT_SOURCE_DIR}/README.md")
endif()
