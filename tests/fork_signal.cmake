# fork_signal.cmake - included from tests/CMakeLists.txt.
#
# test_fork_signal (tests/test_fork_signal.c) exits 77 in a sanitizer
# build, where it does not run.
set_tests_properties(test_fork_signal PROPERTIES SKIP_RETURN_CODE 77)
