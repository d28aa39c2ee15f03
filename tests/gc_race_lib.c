/* gc_race_lib.c - a library for test_gc_races to load and unload: 4 MiB
 * of initialised data and 4 MiB of bss, roots while it is loaded. */
char gc_race_data[4 << 20] = {1};
char gc_race_bss[4 << 20];
