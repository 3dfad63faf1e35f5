"""How an experiment's test traffic is split among its test items.

- "even": every item gets the same share.
- "thompson": adaptive, for the question the merchandiser asks ("which N of these
  win?"). Each posterior draw of the items' conversion rates (Beta(1 + conversions,
  1 + misses)) ranks the items and votes for the two on the edge of its top N — the
  weakest winner and the strongest challenger. Traffic follows the votes, so it goes
  where the top N is still in doubt: to likely winners that are not settled yet and
  their closest rivals, while clear winners and clear losers keep the floor.
  (Pure "show the likely winners" sampling was measured to decide slower than an even
  split; see bench/ab_simulation.py.)

The weights are recomputed from stored counts every few seconds, not per request
(batched Thompson sampling), so a request only draws one number against them.
Functions accept arrays with leading batch dimensions (..., n_items), which lets the
simulation run many experiments at once through the same code.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsvc.events import ArmItemStats
from recsvc.experiments import Experiment


def even_weights(n_items: int) -> np.ndarray:
    return np.full(n_items, 1.0 / n_items)


def thompson_weights(conversions: np.ndarray, exposures: np.ndarray, top_n: int,
                     floor: float, rng: np.random.Generator, draws: int = 1000) -> np.ndarray:
    """Traffic weights (..., n) summing to 1, each at least `floor` (a fraction)."""
    conversions = np.asarray(conversions, dtype=float)
    exposures = np.asarray(exposures, dtype=float)
    n = conversions.shape[-1]
    if not 0 <= floor * n <= 1:
        raise ValueError(f"floor: at most 1/{n} for {n} items, got {floor}")
    a = 1 + conversions[..., None]
    b = 1 + np.maximum(exposures - conversions, 0)[..., None]
    theta = rng.beta(a, b, size=(*conversions.shape, draws))  # (..., n, draws)
    order = np.argsort(-theta, axis=-2)  # item index at each rank, per draw
    votes = np.zeros(conversions.shape)
    edge = [top_n - 1] + ([top_n] if top_n < n else [])
    flat_votes = votes.reshape(-1, n)
    flat_order = order.reshape(-1, n, draws)
    rows = np.arange(flat_votes.shape[0])[:, None]
    for rank in edge:
        np.add.at(flat_votes, (rows, flat_order[:, rank, :]), 1)
    share = flat_votes / flat_votes.sum(axis=-1, keepdims=True)
    return (floor + (1 - n * floor) * share).reshape(conversions.shape)


def counts_for(e: Experiment, stats: Sequence[ArmItemStats], arm: str = "test"
               ) -> tuple[np.ndarray, np.ndarray]:
    """(conversions, exposures) per test item, in `e.item_ids` order, for `e.metric`."""
    index = {item: k for k, item in enumerate(e.item_ids)}
    conv = np.zeros(len(e.item_ids))
    expo = np.zeros(len(e.item_ids))
    for s in stats:
        k = index.get(s.item_id)
        if s.arm == arm and k is not None:
            conv[k] += s.converted(e.metric)
            expo[k] += s.exposures
    return conv, expo


def allocation_for(e: Experiment, stats: Sequence[ArmItemStats],
                   rng: np.random.Generator) -> np.ndarray:
    """The weights to serve `e` with now, given its counts so far."""
    if e.allocation == "even":
        return even_weights(len(e.item_ids))
    conv, expo = counts_for(e, stats)
    return thompson_weights(conv, expo, e.top_n, e.floor_pct / 100, rng)
