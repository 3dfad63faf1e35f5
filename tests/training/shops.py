"""Small demo shops and retrain configs for the retraining, gate and fault tests."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from training.demo_data import DemoShop, generate_shop, write_shop

# Small enough for ~1 s per run, large enough that metrics are stable between refits.
SHOP = dict(n_styles=80, n_users=400, n_orders=2500)
FAST_TRAIN = """
[train.als]
factors = 8
iterations = 5
num_threads = 1
"""


@lru_cache(maxsize=2)
def shop(seed: int = 0) -> DemoShop:
    return generate_shop(seed, **SHOP)


def write_inputs(directory: Path, orders: pd.DataFrame | None = None, seed: int = 0) -> tuple[Path, Path]:
    """orders.csv and catalog.csv of the demo shop (or the given orders) under `directory`."""
    s = shop(seed)
    paths = write_shop(s, directory)
    if orders is not None:
        orders.to_csv(paths["orders"], index=False)
    return paths["orders"], paths["catalog"]


def write_config(path: Path, orders: Path | str, catalog: Path | str, model_dir: Path, *,
                 extra: str = "", gate: str = "", train: str = FAST_TRAIN) -> Path:
    """A retrain TOML; `extra` adds top-level keys, `gate` lines of [gate], `train` [train.*] tables."""
    text = f'orders = "{orders}"\ncatalog = "{catalog}"\nmodel_dir = "{model_dir}"\n{extra}\n'
    text += f"[gate]\n{gate}\n{train}"
    path.write_text(text)
    return path
