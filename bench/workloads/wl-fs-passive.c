/* Workload 5b: passive false sharing; see falseshare.h. */
#include "falseshare.h"

int main(int argc, char **argv) { return fs_main(argc, argv, 1, "passive"); }
