# Install into a temporary prefix and build against it (not under
# sanitizers: the installed library carries the libc overrides).
if(NOT MHEAP_SANITIZE)
  add_test(NAME install_and_use
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/install/check-install.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(install_and_use PROPERTIES SKIP_RETURN_CODE 77)
endif()
