"""Pieces of the allocator benchmark runner, bench/run.py.

    common     paths, allocator names, small helpers (logging, library
               lookup, apt-get, CPU accounting)
    workloads  the workload list, building the wl-* programs, inputs
    runner     running one workload under one allocator
    analysis   medians, ratios, checksum consistency, summaries
    report     tables, CSV, markdown, machine description, plots
"""
