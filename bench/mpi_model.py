#!/usr/bin/env python3
"""Latency-bandwidth (alpha-beta) model of issue 25's gradient reduction:
prints the tables of docs/distributed.md. A model, not a measurement: the
network figures are assumptions (docs/distributed.md names where they come
from); the compute figures are this machine's (see COMPUTE below).

    python3 bench/mpi_model.py [--batch B] [--chunk R]
"""
import argparse
import math

# alpha: seconds per message; beta: seconds per byte (assumed, not measured).
NETS = {
    "10GbE": (20e-6, 1 / 1.1e9),
    "IB-100G": (1.5e-6, 1 / 11e9),
}

# Per net: floats in the gradient; t_s, single-thread compute seconds per
# sample of a training step; t_upd, seconds of the Adam update as a pass of
# its own (the MPI trainer cannot fuse it into the weight-gradient kernels,
# the gradient is not final until the reduction); gamma, seconds per float
# of one vector addition (chunk partials onto the running sum).
# t_s: README's uncontended 1-thread step, 169 GFLOP/s x 1.007 MFLOP per
# sample (seed) and 14.1 ms per batch of 64 (784-2048-2048-10).
# t_upd: bench/step_bench.c --unfused minus fused at batch 64, CPU time,
# measured 2026-12-07 07:48 on a loaded machine (0.789 ms and 17.8 ms),
# divided by 1.9, the factor by which that run's fused step was slower than
# README's. gamma: bench/mpi_reduce at np=1 (3 additions of 235,146 floats in
# 0.079 ms; of 1,199,882 in 1.1 ms: out of cache, as the wide net's are).
COMPUTE = {
    "seed 784-256-128-10": dict(P=235146, t_s=1.007e6 / 169e9, t_upd=0.789e-3 / 1.9, gamma=0.11e-9),
    "wide 784-2048-2048-10": dict(P=5824522, t_s=14.1e-3 / 64, t_upd=17.8e-3 / 1.9, gamma=0.31e-9),
}


def t_ring(N, n, a, b):
    """Ring allreduce (MPI's large-message choice): not reproducible across N."""
    return 0 if N == 1 else 2 * (N - 1) * a + 2 * (N - 1) / N * n * b


def t_chain(N, n, a, b):
    """Pipelined chain, reduce 0 -> N-1 then copy N-1 -> 0 -> ... -> N-2, in
    S segments: the busiest rank sends k S messages of n / S bytes (k = 2
    from N = 3 on: the running sum and the copy; at N = 2 each rank sends
    one of them), and the pipeline fills over 2 (N - 1) hops. S chosen best:
    sqrt(2 (N-1) n b / (k a))."""
    if N == 1:
        return 0
    k = 1 if N == 2 else 2
    S = max(1, round(math.sqrt(2 * (N - 1) * n * b / (k * a))))
    return k * S * a + k * n * b + 2 * (N - 1) * (a + n / S * b)


def t_scatter(N, n, a, b, m):
    """Alltoall of each rank's m chunk slices + ring allgather of the sums."""
    return 0 if N == 1 else 2 * (N - 1) * a + (m + 1) * (N - 1) / N * n * b


def t_tree(N, n, a, b, gamma_n):
    """The sum over chunks defined as a fixed pairwise tree; with N a power of
    two dividing C each rank's chunks form one whole subtree, summed inside
    the kernels, and the ranks combine them with recursive halving then
    doubling, pairing ranks at distance 1, 2, 4, ... so that each step adds
    neighbouring subtrees as the tree does (not built: bench/mpi_reduce.c's
    tree design sends the same bytes with Alltoallw + Allgatherv, 2 (N-1)
    latencies). gamma_n: seconds of one addition over the whole vector."""
    if N == 1:
        return 0
    return 2 * math.log2(N) * a + 2 * (N - 1) / N * n * b + (N - 1) / N * gamma_n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1024, help="global batch (default 1024)")
    ap.add_argument("--chunk", type=int, default=16, help="rows per chunk (default 16)")
    args = ap.parse_args()
    B, R = args.batch, args.chunk
    C = B // R
    for name, c in COMPUTE.items():
        n = 4 * c["P"]
        print(f"\n{name}: {c['P']} floats ({n / 1e6:.2f} MB), t_s {c['t_s'] * 1e6:.2f} us/sample, "
              f"update {c['t_upd'] * 1e3:.2f} ms; global batch {B} in {C} chunks of {R}")
        print("| network | N | compute ms | ring ms | chain ms | scatter ms | tree ms | eff. ring | "
              "eff. chain | eff. scatter | eff. tree | B* chain | B* tree |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        t1 = B * c["t_s"] + c["t_upd"]
        for net, (a, b) in NETS.items():
            for N in (2, 4, 8, 16, 32, 64):
                if N > C:
                    continue
                m = C // N
                comp = B / N * c["t_s"]
                adds = (m - 1) * c["P"] * c["gamma"]  # own partials onto the running sum
                ring = t_ring(N, n, a, b)
                chain = t_chain(N, n, a, b) + adds
                scat = t_scatter(N, n, a, b, m) + (C - 1) * c["P"] / N * c["gamma"]
                tree = t_tree(N, n, a, b, c["P"] * c["gamma"])
                # replicated update (ring, chain); sharded update (scatter, tree)
                e_ring = t1 / (N * (comp + c["t_upd"] + ring))
                e_chain = t1 / (N * (comp + c["t_upd"] + chain))
                e_scat = t1 / (N * (comp + c["t_upd"] / N + scat))
                e_tree = t1 / (N * (comp + c["t_upd"] / N + tree))
                # global batch whose per-rank compute equals the reduction
                # (the chain's without its additions, which grow with B)
                b_chain = max(N * t_chain(N, n, a, b) / c["t_s"], R * N)
                b_tree = max(N * tree / c["t_s"], R * N)
                print(f"| {net} | {N} | {comp * 1e3:.2f} | {ring * 1e3:.2f} | {chain * 1e3:.2f} | "
                      f"{scat * 1e3:.2f} | {tree * 1e3:.2f} | {e_ring:.0%} | {e_chain:.0%} | "
                      f"{e_scat:.0%} | {e_tree:.0%} | {b_chain:,.0f} | {b_tree:,.0f} |")


if __name__ == "__main__":
    main()
