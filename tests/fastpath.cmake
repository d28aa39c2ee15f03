# Fast-path instruction budgets, one test per pair (not under sanitizers:
# they change the code).
if(NOT MHEAP_SANITIZE)
  foreach(pair malloc_free malloc_free_sized new_delete)
    add_test(NAME fastpath_budget_${pair}
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/fastpath-budget.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${pair})
    set_tests_properties(fastpath_budget_${pair} PROPERTIES SKIP_RETURN_CODE 77)
  endforeach()
endif()
