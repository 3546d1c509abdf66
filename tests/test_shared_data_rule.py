"""The rule for the real-data tests: without ``<repo>/../shared/data`` (or ``$WKD_HF_SHARED_DATA``)
they skip on a developer machine and FAIL when ``CI`` is set."""

import pytest

import data_fixtures


@pytest.mark.parametrize("ci", [None, "", "0", "false", "true", "1"])
def test_missing_shared_data_skips_locally_and_fails_on_ci(monkeypatch, tmp_path, ci):
    monkeypatch.setenv("WKD_HF_SHARED_DATA", str(tmp_path))  # an empty folder: a fresh clone
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    if ci in ("true", "1"):
        with pytest.raises(pytest.fail.Exception, match="CI is set.*must run"):
            data_fixtures._shared("facades", "train")
    else:
        with pytest.raises(pytest.skip.Exception, match="not available"):
            data_fixtures._shared("facades", "train")
    (tmp_path / "facades" / "train").mkdir(parents=True)
    assert data_fixtures._shared("facades", "train") == tmp_path / "facades" / "train"


def test_the_real_data_module_is_gated_as_one(monkeypatch, tmp_path):
    monkeypatch.setenv("WKD_HF_SHARED_DATA", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="facades"):
        data_fixtures.require_shared_module("facades", "horse2zebra")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        data_fixtures.require_shared_module("facades")
    for name in ("facades", "horse2zebra"):
        (tmp_path / name).mkdir()
    assert data_fixtures.require_shared_module("facades", "horse2zebra") == tmp_path
