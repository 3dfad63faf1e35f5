"""One typed config: defaults < file < RECSVC_* environment < flags, with errors naming the key."""
from __future__ import annotations

import dataclasses

import pytest

from recsvc.config import Config, ConfigError, describe, load_config


def test_defaults_are_valid_and_documented():
    cfg = load_config(env={})
    assert cfg == Config() and cfg.port == 50051 and cfg.substitutes_price_band == 0.30
    text = describe()
    for f in dataclasses.fields(Config):
        assert f"{f.name} (" in text and f"RECSVC_{f.name.upper()}" in text and f.metadata["doc"]


def test_state_defaults_to_sqlite_beside_the_models(tmp_path):
    assert load_config(env={"RECSVC_MODEL_DIR": str(tmp_path)}).effective_state_url == f"sqlite:///{tmp_path}/state.db"


def test_toml_file_then_environment_then_flags(tmp_path):
    f = tmp_path / "recsvc.toml"
    f.write_text('port = 6000\nworkers = 2\nrecommend_repeat_categories = ["socks"]\n'
                 'substitutes_category_map = { hoodies = ["sweatshirts"] }\n')
    cfg = load_config(f, env={"RECSVC_WORKERS": "3", "RECSVC_COMPLEMENTS_SAME_CATEGORY": "socks, tights"},
                      overrides={"workers": 4, "port": None})
    assert cfg.port == 6000 and cfg.workers == 4
    assert cfg.recommend_repeat_categories == ["socks"] and cfg.complements_same_category == ["socks", "tights"]
    assert cfg.substitutes_category_map == {"hoodies": ["sweatshirts"]}


def test_yaml_file(tmp_path):
    f = tmp_path / "recsvc.yaml"
    f.write_text("model_dir: /srv/models\nverify_checksums: false\nsubstitutes_price_band: 0.5\n")
    cfg = load_config(f, env={})
    assert (cfg.model_dir, cfg.verify_checksums, cfg.substitutes_price_band) == ("/srv/models", False, 0.5)


def test_environment_values_are_parsed_by_type():
    cfg = load_config(env={"RECSVC_VERIFY_CHECKSUMS": "no", "RECSVC_GRACE_S": "2.5",
                           "RECSVC_SUBSTITUTES_CATEGORY_MAP": '{"a": ["b", "c"]}', "RECSVC_REQUIRE_SERVICES": "1"})
    assert cfg.verify_checksums is False and cfg.grace_s == 2.5 and cfg.substitutes_category_map == {"a": ["b", "c"]}


@pytest.mark.parametrize("env, message", [
    ({"RECSVC_PORT": "abc"}, "port (from environment RECSVC_PORT): expected an integer"),
    ({"RECSVC_PORT": "70000"}, "port (from environment RECSVC_PORT): must be within 0..65535"),
    ({"RECSVC_VERIFY_CHECKSUMS": "maybe"}, "verify_checksums (from environment RECSVC_VERIFY_CHECKSUMS): expected true or false"),
    ({"RECSVC_SUBSTITUTES_CATEGORY_MAP": '["x"]'}, "substitutes_category_map (from environment"),
    ({"RECSVC_THREADS": "8", "RECSVC_MAX_CONCURRENT_RPCS": "4"}, "max_concurrent_rpcs (from environment RECSVC_MAX_CONCURRENT_RPCS): must be >= threads (8)"),
    ({"RECSVC_STATE_URL": "mysql://x"}, "state_url (from environment RECSVC_STATE_URL): must start with sqlite:/// or postgresql://"),
    ({"RECSVC_DEFAULT_LIMIT": "0"}, "default_limit (from environment RECSVC_DEFAULT_LIMIT): must be within 1..100"),
])
def test_bad_values_name_the_key(env, message):
    with pytest.raises(ConfigError) as e:
        load_config(env=env)
    assert message in str(e.value)


def test_file_errors_name_the_key_and_the_file(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match=r"prot \(from .*c.toml\): unknown key; did you mean 'port'\?"):
        load_config(f, env={})
    f.write_text('port = "high"\n')
    with pytest.raises(ConfigError, match=r"port \(from .*c.toml\): expected an integer"):
        load_config(f, env={})
    f.write_text("port = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(f, env={})
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config(tmp_path / "missing.toml", env={})
