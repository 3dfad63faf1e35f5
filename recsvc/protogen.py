"""Regenerate the Python gRPC code from `proto/` (`python -m recsvc.protogen`).

`--check` generates into a temporary directory and compares with the checked-in
files under `recsvc/v1/`, exiting 1 (with the stale file names) when they differ, so a
proto edit without regeneration fails the tests. Lines that only stamp the generator's
version are ignored: a newer grpcio-tools in CI must not fail an unchanged proto.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = Path("recsvc") / "v1"  # mirrors proto/recsvc/v1, so imports are recsvc.v1.*
_VERSION_STAMP = re.compile(
    r"(Protobuf Python Version:|GRPC_GENERATED_VERSION = |_runtime_version\.ValidateProtobufRuntimeVersion|"
    r"^\s*_runtime_version\.Domain\.PUBLIC,\s*$|^\s*\d+,\s*$)"
)


@dataclass
class CheckResult:
    stale: list[str]    # differ from freshly generated output
    missing: list[str]  # generated but not checked in
    extra: list[str]    # checked in but no longer generated

    @property
    def ok(self) -> bool:
        return not (self.stale or self.missing or self.extra)


def proto_files(proto_root: Path = PROTO_ROOT) -> list[Path]:
    return sorted((proto_root / PACKAGE_DIR).glob("*.proto"))


def generate(out_dir: Path, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Run protoc for every proto under proto/recsvc/v1 into `out_dir`; return the files written."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    protos = proto_files(proto_root)
    if not protos:
        raise SystemExit(f"no .proto files under {proto_root / PACKAGE_DIR}")
    well_known = resources.files("grpc_tools") / "_proto"  # google/protobuf/*.proto
    args = ["grpc_tools.protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={out_dir}",
            f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}"]
    args += [str(p.relative_to(proto_root)) for p in protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    return sorted(p for p in (out_dir / PACKAGE_DIR).iterdir() if p.is_file())


def _normalise(text: str) -> list[str]:
    return [line for line in text.splitlines() if not _VERSION_STAMP.search(line)]


def _generated_names(directory: Path) -> set[str]:
    if not directory.is_dir():
        return set()
    return {p.name for p in directory.iterdir() if p.is_file() and re.search(r"_pb2(_grpc)?\.pyi?$", p.name)}


def check(root: Path = ROOT) -> CheckResult:
    """Compare freshly generated code with the checked-in files under root/recsvc/v1."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_dir = Path(tmp) / PACKAGE_DIR
        generate(Path(tmp), root / "proto")
        fresh, current = _generated_names(fresh_dir), _generated_names(root / PACKAGE_DIR)
        stale = [n for n in sorted(fresh & current)
                 if _normalise((fresh_dir / n).read_text()) != _normalise((root / PACKAGE_DIR / n).read_text())]
    return CheckResult(stale=stale, missing=sorted(fresh - current), extra=sorted(current - fresh))


def write(root: Path = ROOT) -> list[Path]:
    """Regenerate in place: generate aside, then replace the generated files."""
    target = root / PACKAGE_DIR
    target.mkdir(parents=True, exist_ok=True)
    (target / "__init__.py").touch()
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(Path(tmp), root / "proto")
        for old in _generated_names(target) - {f.name for f in files}:
            (target / old).unlink()
        for f in files:
            shutil.copyfile(f, target / f.name)
    return [target / f.name for f in files]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recsvc.protogen", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 when the checked-in code is stale")
    args = ap.parse_args(argv)
    if args.check:
        res = check()
        if res.ok:
            print(f"generated code in {PACKAGE_DIR} is up to date")
            return 0
        for label, names in (("stale", res.stale), ("missing", res.missing), ("no longer generated", res.extra)):
            for n in names:
                print(f"{label}: {PACKAGE_DIR / n}", file=sys.stderr)
        print("run `python -m recsvc.protogen` (or `make proto`) and commit the result", file=sys.stderr)
        return 1
    for f in write():
        print(f"wrote {f.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
