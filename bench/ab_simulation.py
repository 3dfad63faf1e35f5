"""A/B slot simulation: exposures needed to pick the top 3 of 10 new items.

Ten test items with known true conversion rates (add-to-cart per exposure) share a
test slot. Exposures arrive in batches of `--batch` (the traffic between two
allocation updates in the service); after each batch the allocation is recomputed
from the counts so far, exactly as the service does, with recsvc's own code:

- even:     `recsvc.allocation.even_weights`
- thompson: `recsvc.allocation.thompson_weights` (top-N edge sampling, floor per item)

At each exposure budget the pick is the report's (`recsvc.report.rank_items`: the 3
items most likely to be in the top 3), and it is correct when it is exactly items
1-3. Each budget is a prefix of the same run (the allocation does not know the
budget), so one run per strategy yields the whole curve. Repeated `--reps` times.

Run:  .venv/bin/python -m bench.ab_simulation            (about a minute on 1 core)
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from recsvc.allocation import even_weights, thompson_weights
from recsvc.report import rank_items, wilson

TRUE_RATES = np.array([0.100, 0.090, 0.080, 0.070, 0.060, 0.050, 0.045, 0.040, 0.035, 0.030])
TOP_N = 3
BUDGETS = (5_000, 10_000, 15_000, 20_000, 25_000, 30_000, 40_000, 50_000, 60_000)
TARGET = 0.95


def simulate(allocation: str, budgets: Sequence[int], reps: int, seed: int = 0,
             batch: int = 500, floor: float = 0.02, rates: np.ndarray = TRUE_RATES,
             top_n: int = TOP_N, alloc_draws: int = 256, pick_draws: int = 1000
             ) -> dict[int, float]:
    """Share of `reps` simulated experiments whose pick is the true top N, per budget."""
    rng = np.random.default_rng(seed)
    k = len(rates)
    conv = np.zeros((reps, k))
    expo = np.zeros((reps, k))
    truth = np.argsort(-rates)[:top_n]
    spent, correct = 0, {}
    for budget in sorted(budgets):
        while spent < budget:
            n = min(batch, budget - spent)
            if allocation == "even":
                w = np.broadcast_to(even_weights(k), (reps, k))
            else:
                w = thompson_weights(conv, expo, top_n, floor, rng, alloc_draws)
            shown = rng.multinomial(n, w / w.sum(axis=1, keepdims=True))
            conv += rng.binomial(shown, rates)
            expo += shown
            spent += n
        order, _ = rank_items(conv, expo, top_n, pick_draws, rng)
        picked = np.sort(order[:, :top_n], axis=1)
        correct[budget] = float(np.mean(np.all(picked == np.sort(truth), axis=1)))
    return correct


def first_reaching(acc: dict[int, float], target: float) -> int | None:
    return next((b for b in sorted(acc) if acc[b] >= target), None)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--floor", type=float, default=0.02, help="thompson: least share per item")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budgets", type=lambda s: [int(x) for x in s.split(",")],
                    default=list(BUDGETS))
    args = ap.parse_args(argv)

    print(f"True add-to-cart rates: {', '.join(f'{r:.3f}' for r in TRUE_RATES)} "
          f"(top {TOP_N}: items 1-{TOP_N}; #3 vs #4 differ by 1 point)")
    print(f"{args.reps} simulated experiments per strategy, allocation updated every "
          f"{args.batch} exposures, floor {args.floor:.0%} per item (thompson)\n")
    results = {}
    for strategy in ("even", "thompson"):
        started = time.perf_counter()
        results[strategy] = simulate(strategy, args.budgets, args.reps, args.seed,
                                     args.batch, args.floor)
        print(f"  {strategy}: {time.perf_counter() - started:.1f} s")
    print(f"\n{'exposures':>10} | {'even: top 3 right':>22} | {'thompson: top 3 right':>22}")
    print(f"{'-' * 10}-+-{'-' * 22}-+-{'-' * 22}")
    for b in args.budgets:
        cells = []
        for strategy in ("even", "thompson"):
            acc = results[strategy][b]
            lo, hi = wilson(acc * args.reps, args.reps)
            cells.append(f"{acc:6.1%} ({lo:5.1%}-{hi:5.1%})")
        print(f"{b:>10,} | {cells[0]:>22} | {cells[1]:>22}")
    print()
    for strategy in ("even", "thompson"):
        b = first_reaching(results[strategy], TARGET)
        where = f"{b:,} exposures" if b else f"more than {max(args.budgets):,} exposures"
        print(f"{strategy:>8}: >= {TARGET:.0%} of experiments pick the true top 3 at {where}")
    even_b, ts_b = (first_reaching(results[s], TARGET) for s in ("even", "thompson"))
    if ts_b and (even_b is None or ts_b < even_b):
        ratio = "" if even_b is None else f" ({1 - ts_b / even_b:.0%} fewer)"
        print(f"thompson needs fewer exposures than an even split{ratio}")
    else:
        print("thompson does NOT beat an even split at these settings")
    print("(intervals: 95 % Wilson over the simulated experiments)")


if __name__ == "__main__":
    main()
