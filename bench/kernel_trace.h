/* Per-kernel times of real GPU work through CUPTI's activity records (bench_cuda --profile; no performance counters
 * needed, so it works where Nsight Compute is refused them). Kernels inside CUDA graphs are recorded one by one with
 * their true start and end, PDL overlap included. */
#ifndef G4C_BENCH_KERNEL_TRACE_H
#define G4C_BENCH_KERNEL_TRACE_H

#include <stddef.h>
#include <stdio.h>

/* Start recording kernel activity; 0 on success, else an error was printed. */
int kernel_trace_start(void);
/* Stop, then print to f a markdown breakdown of the recorded kernels over `tokens` decode steps: per kernel name and
 * grid, launches and microseconds per token and the share of summed kernel time; the wall span per token (first start
 * to last end) beside the summed durations (their difference: overlap, minus the gaps); and the weight-reading kernels
 * (names containing "gemv") against the floor, weight_bytes per token at bw_gbs. */
void kernel_trace_report(FILE *f, int tokens, double weight_bytes, double bw_gbs);

#endif
