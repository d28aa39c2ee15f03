# Fast-path instruction budget (not under sanitizers: they change the code).
if(NOT MHEAP_SANITIZE)
  add_test(NAME fastpath_budget
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/fastpath-budget.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(fastpath_budget PROPERTIES SKIP_RETURN_CODE 77)
endif()
