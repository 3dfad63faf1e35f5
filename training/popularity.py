"""Product popularity: the service's fallback ranking and the order counts it can quote."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.copurchase import order_matrix, order_weights
from training.data import Interactions


@dataclass
class PopularityConfig:
    """half_life_days: an order's vote halves every this many days before the newest
    order, so a product that sold well last year but not lately ranks below this
    month's sellers."""

    half_life_days: float = 30.0

    def __post_init__(self) -> None:
        if self.half_life_days <= 0:
            raise ValueError(f"[popularity] half_life_days must be positive, got {self.half_life_days}")


def fit_popularity(inter: Interactions, cfg: PopularityConfig) -> tuple[np.ndarray, np.ndarray]:
    """(recency-weighted orders containing each product (P,) float32,
    orders containing each product (P,) int32); a product counts once per order."""
    x = order_matrix(inter)
    count = np.asarray(x.sum(axis=0)).ravel().astype(np.int32)
    weighted = np.asarray(x.T @ order_weights(inter, cfg.half_life_days)).ravel().astype(np.float32)
    return weighted, count
