"""The quality gate: a worse or insane retraining never becomes `current`."""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from training import bundle as b
from training.cli import main
from training.config import TrainConfig
from training.gate import read_verdict, remap_bundle, score_bundle
from training.pipeline import train
from tests.training.shops import FAST_TRAIN, shop, write_config, write_inputs


# Pairs must be bought together in 15 orders instead of 2: the data report is fine, the lists are not.
WORSE = FAST_TRAIN + "[train.copurchase]\nmin_support = 15\n"


@pytest.fixture
def live(tmp_path):
    """A model dir whose current bundle passed a first run on the full demo shop."""
    orders, catalog = write_inputs(tmp_path / "shop")
    cfg = write_config(tmp_path / "retrain.toml", orders, catalog, tmp_path / "models")
    assert main(["run", "--config", str(cfg)]) == 0
    return tmp_path


def gate_json(model_dir, version) -> dict:
    return json.loads((model_dir / "versions" / version / "gate.json").read_text())


def newest(model_dir) -> str:
    return b.list_versions(model_dir)[-1]


def rerun(tmp_path, orders: pd.DataFrame | None = None, *args: str, gate: str = "", **kw) -> int:
    o, c = write_inputs(tmp_path / "shop2", orders)
    cfg = write_config(tmp_path / "retrain2.toml", o, c, tmp_path / "models", gate=gate, **kw)
    return main(["run", "--config", str(cfg), *args])


def test_retraining_on_the_same_orders_passes_and_moves_current(live):
    models = live / "models"
    first = b.current_version(models)
    assert rerun(live) == 0
    second = b.current_version(models)
    assert second != first and second == newest(models)
    report = gate_json(models, second)
    assert report["verdict"] == "passed" and report["live_version"] == first
    compared = {c["name"] for c in report["checks"]}
    assert {"order volume", "rejected rows", "complements/copurchase/NDCG@10", "personal/als/NDCG@10"} <= compared


def test_a_partial_export_is_rejected_and_the_live_model_stays(live, capsys):
    models = live / "models"
    before = b.current_version(models)
    orders = shop().orders
    cutoff = (pd.Timestamp(orders["ts"].max()) - pd.Timedelta(days=14)).isoformat(" ")
    recent = orders[orders["ts"] >= cutoff]  # an export that only sent the last two weeks
    assert rerun(live, recent) == 3
    assert b.current_version(models) == before
    rejected = newest(models)
    assert rejected != before and read_verdict(models / "versions" / rejected) == "rejected"
    reasons = " ".join(gate_json(models, rejected)["reasons"])
    assert "order volume" in reasons
    err = capsys.readouterr().err
    assert "quality gate rejected" in err and f"recsvc-train promote {rejected}" in err


def test_an_export_full_of_malformed_rows_is_rejected(live):
    orders = shop().orders.copy()
    broken = np.random.default_rng(0).random(len(orders)) < 0.2
    orders.loc[broken, "item_id"] = "???"  # e.g. a join on the wrong key in the export
    assert rerun(live, orders) == 3
    reasons = gate_json(live / "models", newest(live / "models"))["reasons"]
    assert any(r.startswith("rejected rows:") for r in reasons)
    assert not any(r.startswith("order volume") for r in reasons)  # 80 % of orders is within bounds


def test_a_worse_model_on_sane_data_is_rejected_by_its_guarded_metric(live):
    assert rerun(live, train=WORSE) == 3
    reasons = gate_json(live / "models", newest(live / "models"))["reasons"]
    assert any(r.startswith("complements/copurchase/HitRate@10:") for r in reasons)


def test_tolerances_are_configurable(live):
    # The same degraded model, but the operator accepts any drop of the guarded metric.
    lenient = "[gate.tolerances]\n\"complements/copurchase/HitRate@10\" = 1.0\n"
    assert rerun(live, gate=lenient, train=WORSE) == 0


def test_beating_the_baselines_can_be_required_even_on_a_first_run(tmp_path):
    orders, catalog = write_inputs(tmp_path / "shop")
    models = tmp_path / "models"
    required = 'beat_baselines = ["complements/copurchase/NDCG@10"]\n'
    cfg = write_config(tmp_path / "r.toml", orders, catalog, models, gate=required, train=WORSE)
    assert main(["run", "--config", str(cfg)]) == 3
    assert b.current_version(models) is None
    reasons = gate_json(models, newest(models))["reasons"]
    assert reasons and reasons[0].startswith("complements/copurchase/NDCG@10 vs baselines:")
    # Not required (the default): the same standing is reported, and the run publishes.
    cfg = write_config(tmp_path / "r.toml", orders, catalog, models, train=WORSE)
    assert main(["run", "--config", str(cfg)]) == 0
    notes = gate_json(models, b.current_version(models))["notes"]
    assert any(n.startswith("complements/copurchase/NDCG@10 vs baselines (not enforced):") for n in notes)


def test_force_publishes_a_rejected_bundle_and_says_so(live, caplog, capsys):
    models = live / "models"
    orders = shop().orders
    with caplog.at_level(logging.WARNING, logger="recsvc.retrain"):
        assert rerun(live, orders.head(len(orders) // 4), "--force") == 0
    forced = b.current_version(models)
    assert forced == newest(models)
    assert read_verdict(models / "versions" / forced) == "forced"
    assert any("--force given" in r.getMessage() and forced in r.getMessage() for r in caplog.records)
    assert main(["list", "--model-dir", str(models)]) == 0
    assert f"* {forced}  (forced past the quality gate)" in capsys.readouterr().out


def test_rollback_skips_bundles_the_gate_rejected(live):
    models = live / "models"
    good = b.current_version(models)
    orders = shop().orders
    assert rerun(live, orders.head(100)) == 3  # rejected, stays in versions/
    assert rerun(live) == 0
    assert main(["rollback", "--model-dir", str(models)]) == 0
    assert b.current_version(models) == good


def test_a_corrupt_live_bundle_does_not_block_a_good_one(live):
    models = live / "models"
    broken = models / "current" / "complements_idx.npy"
    broken.write_bytes(broken.read_bytes()[:64])
    assert rerun(live) == 0
    report = gate_json(models, b.current_version(models))
    assert report["live_version"] is None and "live bundle unreadable" in report["notes"][0]


def test_the_live_bundle_is_scored_on_the_new_index(tmp_path):
    """The same bundle scores the same whether the hold-out's products are in its order or not."""
    orders, catalog = write_inputs(tmp_path / "shop")
    cfg = TrainConfig()
    cfg.als.factors, cfg.als.iterations, cfg.als.num_threads = 8, 5, 1
    first = train(orders, catalog, tmp_path / "a", cfg=cfg, progress=False, keep_holdout=True)
    reversed_catalog = tmp_path / "reversed.csv"
    pd.read_csv(catalog, dtype=str).iloc[::-1].to_csv(reversed_catalog, index=False)
    second = train(orders, reversed_catalog, tmp_path / "b", cfg=cfg, progress=False, keep_holdout=True)
    assert list(second.holdout.train.product_ids) != list(first.holdout.train.product_ids)

    bundle = b.load_bundle(first.bundle_path)
    own = score_bundle(bundle.arrays, first.holdout, cfg.eval)
    mapped = score_bundle(bundle.arrays, second.holdout, cfg.eval)
    assert [(r.task, r.model, r.n_queries) for r in own] == [(r.task, r.model, r.n_queries) for r in mapped]
    for a, c in zip(own, mapped):
        for metric in ("HitRate@10", "Recall@10", "NDCG@10", "Coverage@10"):
            assert c.metrics[metric] == pytest.approx(a.metrics[metric], abs=1e-9), (a.task, metric)


def test_remapping_drops_what_the_new_index_lacks():
    arrays = {"product_ids": np.array(["a", "b", "c"]), "user_ids": np.array(["u1", "u2"]),
              "complements_idx": np.array([[1, 2], [2, -1], [0, 1]], np.int32),
              "substitutes_idx": np.array([[2, -1], [-1, -1], [0, -1]], np.int32),
              "item_factors": np.array([[1, 0], [0, 1], [1, 1]], np.float32),
              "user_factors": np.array([[2, 2], [3, 3]], np.float32)}
    out = remap_bundle(arrays, product_ids=np.array(["c", "new", "a"]), user_ids=np.array(["u2", "u9"]))
    # c's neighbours a, b -> [2, -1] (b is gone); "new" has none; a's neighbours b, c -> [-1, 0].
    assert out["complements_idx"].tolist() == [[2, -1], [-1, -1], [-1, 0]]
    assert out["substitutes_idx"].tolist() == [[2, -1], [-1, -1], [0, -1]]
    assert out["item_factors"].tolist() == [[1, 1], [0, 0], [1, 0]]
    assert out["user_factors"].tolist() == [[3, 3], [0, 0]]


def test_gate_settings_are_validated_by_name(tmp_path):
    orders, catalog = write_inputs(tmp_path / "shop")
    cfg = write_config(tmp_path / "r.toml", orders, catalog, tmp_path / "m",
                       gate='max_rejected_share = 2\n')
    assert main(["run", "--config", str(cfg)]) == 2
    cfg = write_config(tmp_path / "r.toml", orders, catalog, tmp_path / "m",
                       gate='[gate.tolerances]\n"copurchase-ndcg" = 0.1\n')
    assert main(["run", "--config", str(cfg)]) == 2
    cfg = write_config(tmp_path / "r.toml", orders, catalog, tmp_path / "m", gate="max_drop = 0.1\n")
    assert main(["run", "--config", str(cfg)]) == 2
    assert not (tmp_path / "m").exists()  # nothing is started on a bad config
