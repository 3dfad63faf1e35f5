"""A loaded model as plain array files that every worker maps: the model image.

Loading a bundle (`load_model`: checksums, the catalog's strings, id indexes) costs ~0.8 s
of CPU at 100k products, much of it holding the GIL, and a worker pinned to a core pays
it on the core that answers its requests: at half the sustainable rate, ten swaps cost
tens of thousands of RESOURCE_EXHAUSTED. An image moves that work out of the workers:

- A hot reload runs `load_model` once, in a child process (`python -m
  recsvc.model_image`) at the lowest CPU priority on any core, so it takes idle time,
  not the workers'; it writes every array of the `Model` here, in a directory renamed
  into place when complete.
- Each worker then maps the files, their pages populated before the first request (in
  slices, with the GIL handed over between) and shared by all workers of the machine:
  one copy in memory. After a swap the old model's pages are released the same way.
- The first load of a process (nothing served yet) loads in the process, as fast as it
  can, and writes the image for the workers after it; a restart maps the image.

An image is named by a digest of its bundle's path and files (size, mtime), the image
format and `verify`: a changed or corrupt bundle file is a new name, prepared (and
refused) anew. Images not used for a while are removed, keeping the newest few.
Every failure to write, prepare or map an image falls back to loading in the worker.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import mmap
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from recsvc.fast import id_slots
from recsvc.idindex import IdIndex
from recsvc.model import Attribute, Model, _check, _validate, load_model
from recsvc.pacing import alone, pause
from training.bundle import BundleError, resolve

log = logging.getLogger("recsvc.model_image")

IMAGE_FORMAT = 2  # bump when Model's fields or their meaning change (2: the kernel's id hash tables)
META = "image.json"
KEEP = 2  # images kept besides the one just made (a rollback finds the previous one)
MIN_AGE_S = 10.0  # an image used this recently is never removed (a worker may be opening it)
_BUNDLE_ERROR = 3  # the child's exit status: the bundle is refused (stderr says why)
_MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22)  # Linux >= 5.14
_SLICE = 4 << 20  # bytes of mapping per madvise call (~1 ms of page-table work)
# A child that hangs (a stuck mount) must not stop the watcher for good: after this the
# worker loads the bundle itself. Generous: at the lowest priority on saturated cores a
# 100k-product load can take minutes.
_CHILD_TIMEOUT_S = 900.0

# Model fields held as arrays in the image, by file name.
_ARRAYS = (
    "product_ids", "product_title", "product_category", "variant_ids", "variant_product", "variant_price",
    "product_variants_indptr", "product_variants", "popularity", "popularity_count", "popular_order",
    "category_popular_indptr", "category_popular", "complements_idx", "complements_score",
    "complements_support", "category_complements_idx", "category_complements_score", "substitutes_idx",
    "substitutes_score", "item_factors", "user_factors", "user_items_indptr", "user_items_indices",
)
_INDEXES = ("product_index", "variant_index", "user_index")  # IdIndex: ids, order, sorted


class ImageUnavailable(Exception):
    """No image could be made or mapped (no space, no child process...): load in the worker."""


def root_for(setting: str, bundle: Path) -> Path | None:
    """The images' directory for config `model_image_dir` (None: off). auto: shared memory
    where it has room for ~2 images of this bundle (a page there never waits on a disk;
    containers often give /dev/shm only 64 MB), else the temp dir."""
    if setting == "off":
        return None
    if setting != "auto":
        return Path(setting)
    shm = Path("/dev/shm")
    base = Path(tempfile.gettempdir())
    try:
        need = 3 * sum(p.stat().st_size for p in bundle.iterdir())  # an image is ~1.3x its bundle
        st = os.statvfs(shm)
        if os.access(shm, os.W_OK) and st.f_bavail * st.f_frsize >= need:
            base = shm
    except OSError:
        pass
    return base / f"recsvc-images-{os.geteuid()}"


def image_dir(root: Path, bundle_dir: Path, verify: bool) -> Path:
    h = hashlib.sha256(f"{IMAGE_FORMAT}\0{bundle_dir}\0{int(verify)}\0".encode())
    for p in sorted(bundle_dir.iterdir()):
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return root / f"{bundle_dir.name[:40]}-{h.hexdigest()[:16]}"


# --- writing ------------------------------------------------------------------------------
def write_image(model: Model, dest: Path) -> None:
    """All of `model` into `dest`, atomically (a reader sees a whole image or none)."""
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir()
    try:
        arrays = _image_arrays(model)
        if id_slots is not None:  # the kernel's id lookup tables: built here, not in each worker
            for name in _INDEXES:
                arrays.setdefault(f"{name}.slots", id_slots(getattr(model, name)))
        files = [name for name in arrays if name.startswith("attribute.")]  # in model.attributes' order
        for name, a in arrays.items():
            source = _whole_file(a)
            if source is not None:  # a bundle array as it is: copied by the kernel (sendfile)
                shutil.copyfile(source, tmp / f"{name}.npy")
            else:
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(a), allow_pickle=False)
        meta = {
            "image_format": IMAGE_FORMAT, "version": model.version, "path": str(model.path),
            "manifest": model.manifest, "category_names": model.category_names,
            "attributes": [{"name": n, "file": f, "values": a.values} for (n, a), f in zip(model.attributes.items(), files)],
            "load_seconds": model.load_seconds, "arrays": sorted(arrays),
        }
        with open(tmp / META, "w") as f:
            json.dump(meta, f)
        try:
            os.rename(tmp, dest)
        except OSError:  # another process wrote the same image meanwhile: keep that one
            if not (dest / META).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _image_arrays(model: Model) -> dict[str, np.ndarray]:
    """Every array of `model`, by file name in its image."""
    arrays = {name: getattr(model, name) for name in _ARRAYS}
    for name in _INDEXES:
        index: IdIndex = getattr(model, name)
        arrays[f"{name}.order"], arrays[f"{name}.sorted"] = index._order, index._sorted
        if index.hash_slots is not None:
            arrays[f"{name}.slots"] = index.hash_slots
    arrays["user_ids"] = model.user_index.ids
    for i, attr in enumerate(model.attributes.values()):  # by position: any name is a safe file name
        arrays[f"attribute.{i}"] = attr.codes
    return arrays


def _whole_file(a: np.ndarray) -> str | None:
    """The .npy file `a` is the whole of, mapped as it is (load_model(mapped=True)), else None."""
    base = a
    while isinstance(base, np.ndarray) and not isinstance(base, np.memmap):
        base = base.base
    if not (isinstance(base, np.memmap) and base.filename and str(base.filename).endswith(".npy")):
        return None
    same = (a.dtype == base.dtype and a.shape == base.shape and a.flags.c_contiguous
            and a.__array_interface__["data"][0] == base.__array_interface__["data"][0])
    return str(base.filename) if same else None


# --- mapping ------------------------------------------------------------------------------
def _map(path: Path) -> np.ndarray:
    """A read-only array over the file's pages, populated in slices (no fault in a request)."""
    with open(path, "rb") as f:
        fmt = np.lib.format
        major, _ = fmt.read_magic(f)
        shape, fortran, dtype = (fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0)(f)
        offset = f.tell()
        size = os.fstat(f.fileno()).st_size
        count = int(np.prod(shape, dtype=np.int64))
        if fortran or dtype.hasobject or size != offset + count * dtype.itemsize:
            raise ValueError(f"{path} is not a whole C-ordered array file")
        mm = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    _in_slices(mm, _MADV_POPULATE_READ)
    return np.frombuffer(mm, dtype=dtype, count=count, offset=offset).reshape(shape)


def _in_slices(mm: mmap.mmap, advice: int) -> None:
    """madvise over the whole mapping, a slice at a time with the GIL handed over between:
    page-table work on the worker's own core (~1 us a page here; MAP_POPULATE or munmap
    of a 200 MB image in one go stalled requests for 5-20 ms)."""
    for lo in range(0, len(mm), _SLICE):
        try:
            mm.madvise(advice, lo, min(_SLICE, len(mm) - lo))
        except OSError:  # MADV_POPULATE_READ needs Linux 5.14: fault the slice's pages in by reading them
            if advice != _MADV_POPULATE_READ:
                return
            int(np.frombuffer(mm, np.uint8, min(_SLICE, len(mm) - lo), lo)[::mmap.PAGESIZE].max())
        pause()


def _mapping(a: np.ndarray) -> mmap.mmap | None:
    """The mmap under an array of an image (np.frombuffer: via a memoryview), else None."""
    base = a
    while isinstance(base, np.ndarray):
        base = base.base
    base = base.obj if isinstance(base, memoryview) else base
    return base if isinstance(base, mmap.mmap) else None


def release(model: Model, after_s: float = 0.0) -> None:
    """Drop the page-table entries of a model's mapped arrays, in slices, `after_s` from now
    (requests that took it finish first): once it is no longer served, so that freeing it
    later is cheap. A page still read afterwards faults back in: correct, only slower. A
    model loaded in the process (no image) returns at once."""
    mappings = {id(m): m for m in map(_mapping, _image_arrays(model).values()) if m is not None}
    if mappings:
        time.sleep(after_s)
    for m in mappings.values():
        _in_slices(m, mmap.MADV_DONTNEED)


def open_image(path: Path) -> Model:
    """The Model in image `path`. Raises ValueError/OSError/BundleError when it is damaged."""
    t0 = time.perf_counter()
    with open(path / META) as f:
        meta = json.load(f)
    if meta.get("image_format") != IMAGE_FORMAT:
        raise ValueError(f"image format {meta.get('image_format')!r}, expected {IMAGE_FORMAT}")
    a = {name: _map(path / f"{name}.npy") for name in meta["arrays"]}
    bundle = Path(meta["path"])
    category_names = list(meta["category_names"])
    _validate({**a, "category_names": category_names}, bundle)  # so a request never indexes out of bounds
    P, V, C = len(a["product_ids"]), len(a["variant_ids"]), len(category_names)
    for name, n, bound in (("variant_product", V, P), ("product_variants", V, V), ("popular_order", P, P),
                           ("category_popular", P, P)):
        x = a[name]
        _check(x.shape == (n,) and (n == 0 or (x.min() >= 0 and x.max() < bound)), bundle, f"image {path}: {name} is damaged")
    for name, n in (("product_variants_indptr", P), ("category_popular_indptr", C)):
        x = a[name]
        _check(x.shape == (n + 1,) and x[0] == 0 and x[-1] == len(a["product_variants" if n == P else "category_popular"]),
               bundle, f"image {path}: {name} is damaged")

    def index(name: str, ids: np.ndarray) -> IdIndex:
        order, sorted_, slots = a[f"{name}.order"], a[f"{name}.sorted"], a.get(f"{name}.slots")
        _check(order.shape == ids.shape and sorted_.shape == ids.shape and (len(ids) == 0 or (order.min() >= 0 and order.max() < len(ids))),
               bundle, f"image {path}: {name} is damaged")
        _check(slots is None or (slots.dtype == np.int32 and slots.ndim == 1 and len(slots) >= 2 * len(ids)
                                 and slots.min() >= -1 and slots.max() < len(ids)),
               bundle, f"image {path}: {name}'s hash table is damaged")
        return IdIndex.from_sorted(ids, order, sorted_, slots)

    attributes = {}
    for at in meta["attributes"]:
        codes = a[at["file"]]
        _check(codes.shape == (V,), bundle, f"image {path}: attribute {at['name']} is damaged")
        attributes[at["name"]] = Attribute(codes=codes, values={str(k): int(v) for k, v in at["values"].items()})
    return Model(
        version=meta["version"], path=bundle, manifest=meta["manifest"],
        product_index=index("product_index", a["product_ids"]), variant_index=index("variant_index", a["variant_ids"]),
        user_index=index("user_index", a["user_ids"]), category_names=category_names,
        category_index={c: i for i, c in enumerate(category_names)}, attributes=attributes,
        loaded_at=datetime.now(timezone.utc), load_seconds=time.perf_counter() - t0,
        **{name: a[name] for name in _ARRAYS},
    )


# --- the worker's entry point ---------------------------------------------------------------
def load(model_dir: Path, setting: str | Path, *, verify: bool, background: bool) -> Model:
    """The model `model_dir` names: its image if there is one, else made now.

    setting: config `model_image_dir` (auto, a directory). background: a model is being
    served; the bundle is loaded in a low-priority child process. Otherwise in this
    process, and the image written after. Raises BundleError for a bundle that cannot be
    served, ImageUnavailable when no image can be used."""
    bundle = resolve(model_dir)
    try:
        root = root_for(str(setting), bundle)
        if root is None:
            raise ImageUnavailable("model_image_dir is off")
        dest = image_dir(root, bundle, verify)
    except OSError as e:
        raise ImageUnavailable(f"cannot read {bundle}: {e}") from e
    _check_owner(root)
    model = _open_existing(dest)
    if model is not None:
        return model
    if not background:
        model = load_model(bundle, verify=verify)
        try:
            write_image(model, dest)
            _prune(root, dest)
            log.info("wrote model image %s for the other workers", dest)
        except OSError as e:
            log.warning("could not write the model image %s (%s); each worker loads the bundle itself", dest, e)
        return model
    t0 = time.perf_counter()
    _prepare_in_child(bundle, dest, verify)  # which prunes the old images (unlinking them costs CPU)
    log.info("model image %s made by a child process in %.1f s", dest, time.perf_counter() - t0)
    try:
        return open_image(dest)
    except (OSError, ValueError, BundleError) as e:
        raise ImageUnavailable(f"image {dest} just made cannot be mapped: {e}") from e


def _check_owner(root: Path) -> None:
    """A worker trusts what it maps: the directory must be this user's alone."""
    try:
        st = root.stat()
    except FileNotFoundError:
        return  # made below, by this user, 0700
    except OSError as e:
        raise ImageUnavailable(f"cannot use {root}: {e}") from e
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise ImageUnavailable(f"{root} belongs to another user or others may write to it; "
                               "set model_image_dir to a directory of this user's")


def _open_existing(dest: Path) -> Model | None:
    if not (dest / META).is_file():
        return None
    try:
        model = open_image(dest)
    except (OSError, ValueError, KeyError, BundleError) as e:
        log.warning("model image %s is damaged (%s); removing it and loading the bundle", dest, e)
        shutil.rmtree(dest, ignore_errors=True)
        return None
    try:
        os.utime(dest)  # in use: not pruned
    except OSError:
        pass
    log.info("mapped model image %s", dest)
    return model


def _prepare_in_child(bundle: Path, dest: Path, verify: bool) -> None:
    cmd = [sys.executable, "-m", "recsvc.model_image", str(bundle), str(dest), "--background"]
    if not verify:
        cmd.append("--no-verify")
    try:
        # communicate() waits with the GIL released: the request threads keep it
        done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=_CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:  # run() has killed it
        raise ImageUnavailable(f"preparing {bundle} took over {_CHILD_TIMEOUT_S:.0f} s") from e
    except OSError as e:
        raise ImageUnavailable(f"cannot start {cmd[0]}: {e}") from e
    if done.returncode == _BUNDLE_ERROR:
        raise BundleError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"bundle {bundle} refused")
    if done.returncode != 0 or not (dest / META).is_file():
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise ImageUnavailable(f"preparing {bundle} exited with status {done.returncode}: {tail}")


def _prune(root: Path, keep: Path) -> None:
    """Remove images beyond the newest KEEP (besides `keep`) not used for MIN_AGE_S, and
    leftovers of interrupted writes. Removing a mapped file is safe: a worker that maps
    it keeps its pages."""
    now = time.time()
    try:
        entries = [(p.stat().st_mtime, p) for p in root.iterdir() if p != keep]
    except OSError:
        return
    images = sorted(((t, p) for t, p in entries if not p.name.startswith(".")), reverse=True)
    stale = [p for t, p in images[KEEP:] if now - t > MIN_AGE_S]
    stale += [p for t, p in entries if p.name.startswith(".tmp-") and now - t > _CHILD_TIMEOUT_S]  # its writer is gone
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)


def remove_images(root: Path, under: Path) -> int:
    """Remove the images of bundles inside `under` (a benchmark's model directory when
    it is done: images live in memory, /dev/shm). Returns how many."""
    removed, under = 0, under.resolve()
    for image in (root.iterdir() if root.is_dir() else ()):
        try:
            path = Path(json.loads((image / META).read_text())["path"])
        except (OSError, ValueError, KeyError):
            continue
        if path.is_relative_to(under):
            shutil.rmtree(image, ignore_errors=True)
            removed += 1
    return removed


# --- the child --------------------------------------------------------------------------------
def _lowest_priority() -> None:
    """Idle time on any core: the workers are pinned, this process must not take theirs."""
    try:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    except (AttributeError, OSError):
        pass
    try:
        os.nice(19)
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))  # never preempts a worker on wake-up
    except (AttributeError, OSError):
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recsvc.model_image",
                                 description="Load a model bundle and write its model image (what a "
                                             "recsvc worker runs for a hot reload; see the module's doc).")
    ap.add_argument("bundle", help="bundle directory (or model directory: follows `current`)")
    ap.add_argument("dest", help="image directory to create")
    ap.add_argument("--no-verify", action="store_true", help="skip the bundle's checksums")
    ap.add_argument("--background", action="store_true", help="run at the lowest CPU priority, on any core")
    args = ap.parse_args(argv)
    if args.background:
        _lowest_priority()
    try:
        with alone():
            model = load_model(args.bundle, verify=not args.no_verify, mapped=True)
    except BundleError as e:
        print(e, file=sys.stderr)
        return _BUNDLE_ERROR
    dest = Path(args.dest)
    write_image(model, dest)
    _prune(dest.parent, dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
