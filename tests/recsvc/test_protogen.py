"""The checked-in gRPC code matches proto/: a proto edit without regeneration fails here."""
from __future__ import annotations

import shutil

from recsvc.protogen import PACKAGE_DIR, ROOT, check


def test_generated_code_is_up_to_date():
    res = check()
    assert res.ok, (f"stale generated code {res.stale + res.missing + res.extra}: run `python -m recsvc.protogen` "
                    "(make proto) and commit recsvc/v1/")


def test_an_edited_proto_is_reported_stale(tmp_path):
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    shutil.copytree(ROOT / PACKAGE_DIR, tmp_path / PACKAGE_DIR, ignore=shutil.ignore_patterns("__pycache__"))
    assert check(tmp_path).ok
    proto = tmp_path / "proto" / PACKAGE_DIR / "recommender.proto"
    proto.write_text(proto.read_text().replace("string session_id = 3;", "string session_id = 3;\n  string locale = 6;"))
    res = check(tmp_path)
    assert not res.ok and "recommender_pb2.py" in res.stale


def test_generated_imports_follow_the_package_path():
    grpc_code = (ROOT / PACKAGE_DIR / "recommender_pb2_grpc.py").read_text()
    assert "from recsvc.v1 import recommender_pb2" in grpc_code
