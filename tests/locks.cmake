# locks.cmake - included from tests/CMakeLists.txt.
#
# test_locks (tests/test_locks.c) checks the lock-order and lock-ownership
# checks that only Debug builds compile in (MHI_DEBUG, os.h); elsewhere it
# prints "skipped: release build" and exits 77, which CTest reports as
# skipped.
if(TARGET test_locks)
  set_tests_properties(test_locks PROPERTIES SKIP_RETURN_CODE 77)
endif()
