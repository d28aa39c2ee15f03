# Allocator-comparison workloads (bench/workloads/*.c), run by bench/run.py.
# Included from bench/CMakeLists.txt: include(workloads.cmake).
#
# Each wl-*.c is one executable, built against plain libc (no mheap, no
# sanitizers: they are run with LD_PRELOAD of each allocator), with -O2 and
# pthreads, into ${CMAKE_BINARY_DIR}/bench/workloads; so is each wl-*.cpp,
# the C++ twin of a C workload (bench/workloads/xalloc.h), with
# -fsized-deallocation so that its deletes call the sized operator delete.
# Also there:
# rusage-launch, which starts each run and reports its rusage, and
# libwl-glibc-shim.so, which routes malloc to glibc's for programs linked
# with another allocator (Debian's redis-server links jemalloc).
set(MHEAP_WORKLOADS_DIR ${CMAKE_CURRENT_LIST_DIR}/workloads)
set(MHEAP_WORKLOADS_OUT ${CMAKE_BINARY_DIR}/bench/workloads)
find_package(Threads REQUIRED)

file(GLOB MHEAP_WORKLOAD_SOURCES CONFIGURE_DEPENDS ${MHEAP_WORKLOADS_DIR}/wl-*.c)
foreach(src ${MHEAP_WORKLOAD_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  # Plain build: drop directory-wide options (sanitizers, -Werror) and keep
  # -O2 after whatever the build type adds.
  set_target_properties(${name} PROPERTIES
    COMPILE_OPTIONS "-O2;-Wall;-Wextra"
    LINK_OPTIONS ""
    C_STANDARD 11
    C_EXTENSIONS OFF
    RUNTIME_OUTPUT_DIRECTORY ${MHEAP_WORKLOADS_OUT})
  target_include_directories(${name} PRIVATE ${MHEAP_WORKLOADS_DIR})
  target_link_libraries(${name} PRIVATE Threads::Threads m)
endforeach()

file(GLOB MHEAP_WORKLOAD_CXX_SOURCES CONFIGURE_DEPENDS ${MHEAP_WORKLOADS_DIR}/wl-*.cpp)
foreach(src ${MHEAP_WORKLOAD_CXX_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  set_target_properties(${name} PROPERTIES
    COMPILE_OPTIONS "-O2;-Wall;-Wextra;-fsized-deallocation"
    LINK_OPTIONS ""
    CXX_STANDARD 17
    CXX_STANDARD_REQUIRED ON
    CXX_EXTENSIONS OFF
    RUNTIME_OUTPUT_DIRECTORY ${MHEAP_WORKLOADS_OUT})
  target_include_directories(${name} PRIVATE ${MHEAP_WORKLOADS_DIR})
  target_link_libraries(${name} PRIVATE Threads::Threads m)
endforeach()

# The launcher bench/run.py starts every workload through (see the file).
add_executable(rusage-launch ${MHEAP_WORKLOADS_DIR}/rusage-launch.c)
set_target_properties(rusage-launch PROPERTIES
  COMPILE_OPTIONS "-O2;-Wall;-Wextra"
  LINK_OPTIONS ""
  RUNTIME_OUTPUT_DIRECTORY ${MHEAP_WORKLOADS_OUT})

add_library(wl-glibc-shim SHARED ${MHEAP_WORKLOADS_DIR}/glibc-shim.c)
set_target_properties(wl-glibc-shim PROPERTIES
  COMPILE_OPTIONS "-O2;-Wall;-Wextra"
  LINK_OPTIONS ""
  LIBRARY_OUTPUT_DIRECTORY ${MHEAP_WORKLOADS_OUT})
target_link_libraries(wl-glibc-shim PRIVATE ${CMAKE_DL_LIBS})
