"""Model images: a loaded model as array files, made once (in a child process for a hot
reload) and mapped by every worker; anything wrong with one falls back to the bundle."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from recsvc import model_image
from recsvc.config import Config, ConfigError
from recsvc.fast import id_slots
from recsvc.model import load_model
from recsvc.model_image import META, image_dir, load, open_image, release, write_image
from recsvc.promotions import PromotionBook
from recsvc.runtime import Runtime, make_live
from recsvc.store import open_store
from recsvc.v1 import recommender_pb2 as pb
from tests.recsvc.bundles import P, corrupt, write_apparel
from training.bundle import BundleError, resolve

_SCALARS = ("version", "path", "manifest", "category_names", "category_index")


def _mapped(a: np.ndarray) -> bool:
    return model_image._mapping(a) is not None


def assert_same_model(a, b) -> None:
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
        elif name in _SCALARS:
            assert x == y, name
    for name in ("product_index", "variant_index", "user_index"):
        assert dict(getattr(a, name)) == dict(getattr(b, name)), name
    assert {k: (v.codes.tolist(), v.values) for k, v in a.attributes.items()} == \
           {k: (v.codes.tolist(), v.values) for k, v in b.attributes.items()}


def test_an_image_maps_the_same_model_as_loading_the_bundle(tmp_path):
    bundle = write_apparel(tmp_path / "models")
    loaded = load_model(bundle)
    write_image(loaded, tmp_path / "image")
    mapped = open_image(tmp_path / "image")
    assert_same_model(loaded, mapped)
    assert _mapped(mapped.complements_idx) and not mapped.complements_idx.flags.writeable
    assert mapped.lookup("JKT-1-XL") == loaded.lookup("JKT-1-XL")
    assert mapped.product_id_list == loaded.product_id_list


def test_a_hot_reload_makes_the_image_in_a_child_and_maps_it(tmp_path):
    models = tmp_path / "models"
    write_apparel(models)
    model = load(models, tmp_path / "images", verify=True, background=True)
    dest = image_dir(tmp_path / "images", resolve(models), True)
    assert (dest / META).is_file() and _mapped(model.item_factors)
    assert_same_model(load_model(models), model)


def test_the_next_worker_maps_the_image_the_first_one_made(tmp_path):
    models = tmp_path / "models"
    write_apparel(models)
    first = load(models, tmp_path / "images", verify=True, background=False)  # in this process, then written
    assert not _mapped(first.item_factors)
    dest = image_dir(tmp_path / "images", resolve(models), True)
    written = (dest / META).stat().st_ino
    second = load(models, tmp_path / "images", verify=True, background=True)
    assert _mapped(second.item_factors) and (dest / META).stat().st_ino == written  # mapped, not made again
    assert_same_model(first, second)


def test_a_corrupt_bundle_is_refused_by_the_child_with_the_loaders_reason(tmp_path):
    models = tmp_path / "models"
    corrupt(write_apparel(models))
    with pytest.raises(BundleError, match="checksum mismatch for .*complements_idx.npy: the file is corrupt"):
        load(models, tmp_path / "images", verify=True, background=True)
    assert not any((tmp_path / "images").glob("*/" + META))


def test_a_bundle_file_changed_in_place_gets_a_new_image_and_is_checked_again(tmp_path):
    models = tmp_path / "models"
    bundle = write_apparel(models)
    load(models, tmp_path / "images", verify=True, background=True)
    before = image_dir(tmp_path / "images", bundle, True)
    time.sleep(0.01)
    corrupt(bundle)
    assert image_dir(tmp_path / "images", bundle, True) != before
    with pytest.raises(BundleError, match="checksum mismatch"):
        load(models, tmp_path / "images", verify=True, background=True)


def test_a_damaged_image_is_removed_and_made_again(tmp_path, caplog):
    models = tmp_path / "models"
    bundle = write_apparel(models)
    load(models, tmp_path / "images", verify=True, background=True)
    dest = image_dir(tmp_path / "images", bundle, True)
    with open(dest / "complements_idx.npy", "r+b") as f:
        f.truncate(os.path.getsize(dest / "complements_idx.npy") - 8)
    with caplog.at_level(logging.WARNING, logger="recsvc.model_image"):
        model = load(models, tmp_path / "images", verify=True, background=True)
    assert "is damaged" in caplog.text and "not a whole C-ordered array file" in caplog.text
    assert_same_model(load_model(models), model)
    open_image(dest)  # whole again


def test_an_image_with_indices_out_of_range_is_not_served(tmp_path):
    write_image(load_model(write_apparel(tmp_path / "models")), tmp_path / "image")
    path = tmp_path / "image" / "variant_product.npy"
    a = np.load(path)
    a[0] = 10_000
    np.save(path, a)
    with pytest.raises(BundleError, match="variant_product is damaged"):
        open_image(tmp_path / "image")


@pytest.mark.skipif(id_slots is None, reason="recsvc.fast is not built (pip install -e .)")
def test_an_image_brings_the_kernels_id_tables_so_a_worker_builds_none(tmp_path):
    model = load_model(write_apparel(tmp_path / "models"))
    write_image(model, tmp_path / "image")
    mapped = open_image(tmp_path / "image")
    for name in ("product_index", "variant_index", "user_index"):
        slots = getattr(mapped, name).hash_slots
        assert slots is not None and not slots.flags.writeable, name
        assert np.array_equal(slots, id_slots(getattr(model, name))), name
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        given, built = (make_live(m, store, PromotionBook(store), Config()) for m in (mapped, model))
        for item in ("JKT-1", "JKT-1-M", "TEE-1"):  # a product id and variant ids
            request = pb.ComplementsRequest(item_ids=[item], limit=2)
            got, want = (live.kernel.complements(request, live.inventory.view(), live.prices.view(), "r")
                         for live in (given, built))
            assert got is not None and got == want, item


@pytest.mark.skipif(id_slots is None, reason="recsvc.fast is not built (pip install -e .)")
def test_an_image_with_a_damaged_id_table_is_not_served(tmp_path):
    write_image(load_model(write_apparel(tmp_path / "models")), tmp_path / "image")
    path = tmp_path / "image" / "variant_index.slots.npy"
    a = np.load(path)
    a[a.argmax()] = len(a)  # past every id: a lookup would read out of bounds
    np.save(path, a)
    with pytest.raises(BundleError, match="variant_index's hash table is damaged"):
        open_image(tmp_path / "image")


def test_old_images_are_removed_beyond_the_newest_few(tmp_path):
    root = tmp_path / "images"
    old = time.time() - 2 * max(model_image.MIN_AGE_S, model_image._CHILD_TIMEOUT_S)
    for i, name in enumerate(["v0", "v1", "v2", "v3", ".tmp-v4-interrupted"]):
        (root / name).mkdir(parents=True)
        os.utime(root / name, (old + i, old + i))
    (root / "recent").mkdir()  # used a moment ago
    (root / "new").mkdir()  # just made
    assert model_image.KEEP == 2
    model_image._prune(root, root / "new")
    assert sorted(p.name for p in root.iterdir()) == ["new", "recent", "v3"]


def test_a_released_model_still_answers_right(tmp_path):
    models = tmp_path / "models"
    write_apparel(models)
    model = load(models, tmp_path / "images", verify=True, background=True)
    expected = load_model(models)
    released = {id(model_image._mapping(a)) for a in model_image._image_arrays(model).values()}
    assert len(released) == len(list((tmp_path / "images").glob("*/*.npy")))  # every file of the image
    release(model)  # pages dropped; reading faults them back in
    assert_same_model(expected, model)
    assert model.complements_idx[P["JKT-1"], 0] == P["JEANS-1"]


def test_without_a_usable_image_dir_the_worker_loads_the_bundle_itself(tmp_path, caplog):
    models = tmp_path / "models"
    write_apparel(models, version="v1")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    rt = Runtime(Config(model_dir=str(models), model_image_dir=str(blocker / "images")))
    try:
        with caplog.at_level(logging.WARNING):
            assert rt.reload().changed  # first load
            write_apparel(models, version="v2")
            r = rt.reload()  # hot reload: no child image either
        assert r.changed and rt.live().model.version == "v2", r.message
        assert caplog.text.count("loading the bundle in this worker") == 2, caplog.text
    finally:
        rt.close()


def test_auto_puts_images_in_shared_memory_where_it_has_room(tmp_path):
    bundle = write_apparel(tmp_path / "models")
    root = model_image.root_for("auto", bundle)
    assert root.name == f"recsvc-images-{os.geteuid()}" and root.parent in (Path("/dev/shm"), Path(tempfile.gettempdir()))
    assert model_image.root_for(str(tmp_path / "mine"), bundle) == tmp_path / "mine"
    assert model_image.root_for("off", bundle) is None
    with pytest.raises(ConfigError, match="model_image_dir: must be auto, off or a directory"):
        Config(model_image_dir="").validate()


def test_images_off_loads_in_the_worker(tmp_path):
    models = tmp_path / "models"
    write_apparel(models)
    rt = Runtime(Config(model_dir=str(models), model_image_dir="off"))
    try:
        assert rt.reload().changed and not _mapped(rt.live().model.item_factors)
    finally:
        rt.close()


def test_the_child_takes_idle_time_on_every_cpu():
    code = ("import os; from recsvc.model_image import _lowest_priority; os.sched_setaffinity(0, {0}); "
            "_lowest_priority(); print(os.nice(0), os.sched_getscheduler(0) == os.SCHED_BATCH, "
            "sorted(os.sched_getaffinity(0)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(maxsplit=2)
    assert out[0] == "19" and out[1] == "True"
    assert eval(out[2]) == sorted(os.sched_getaffinity(0))  # not only the (pinned) parent's CPU


def test_an_image_dir_others_may_write_to_is_not_trusted(tmp_path):
    models = tmp_path / "models"
    write_apparel(models)
    (tmp_path / "images").mkdir(mode=0o777)
    os.chmod(tmp_path / "images", 0o777)
    with pytest.raises(model_image.ImageUnavailable, match="others may write to it"):
        load(models, tmp_path / "images", verify=True, background=True)


def test_a_first_load_whose_image_cannot_be_written_still_serves(tmp_path, caplog):
    models = tmp_path / "models"
    bundle = write_apparel(models)
    dest = image_dir(tmp_path / "images", bundle, True)
    dest.parent.mkdir(mode=0o700)
    dest.write_text("in the way")  # the image cannot be renamed into place
    with caplog.at_level(logging.WARNING, logger="recsvc.model_image"):
        model = load(models, tmp_path / "images", verify=True, background=False)
    assert model.n_products == 12 and "could not write the model image" in caplog.text
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]  # no half-written leftover


def test_a_benchmark_removes_the_images_of_its_own_bundles_only(tmp_path):
    mine, other = tmp_path / "bench-models", tmp_path / "shop-models"
    write_apparel(mine)
    write_apparel(other)
    for models in (mine, other):
        load(models, tmp_path / "images", verify=True, background=False)
    assert model_image.remove_images(tmp_path / "images", mine) == 1
    [left] = (tmp_path / "images").iterdir()
    assert open_image(left).path == resolve(other)


def test_a_child_that_takes_too_long_is_stopped_and_the_worker_loads_the_bundle_itself(tmp_path, monkeypatch, caplog):
    models = tmp_path / "models"
    write_apparel(models, version="v1")
    rt = Runtime(Config(model_dir=str(models), model_image_dir=str(tmp_path / "images")))
    try:
        assert rt.reload().changed
        monkeypatch.setattr(model_image, "_CHILD_TIMEOUT_S", 0.01)  # no Python starts that fast
        write_apparel(models, version="v2")
        with caplog.at_level(logging.WARNING):
            r = rt.reload()
        assert r.changed and rt.live().model.version == "v2"
        assert "took over 0 s" in caplog.text and "loading the bundle in this worker" in caplog.text
    finally:
        rt.close()
