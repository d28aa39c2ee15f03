# The build-time knobs of the stashes (cache.c) must compile when set on
# their own: each compiles cache.c with one of them, warnings as errors.
foreach(knob MHI_STASH_BYTES=8192 MHI_STASH_MIN=2 MHI_STASH_MAX=32
             MHI_STASH_GROW_BYTES=65536 MHI_STASH_GROW_MAX=512 MHI_STASH_TOTAL=131072)
  string(REGEX REPLACE "=.*" "" name ${knob})
  add_test(NAME build_${name}
    COMMAND ${CMAKE_C_COMPILER} -std=c11 -fsyntax-only -Wall -Wextra -Werror -D${knob}
            -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/src
            ${PROJECT_SOURCE_DIR}/src/cache.c)
endforeach()
