"""Model cards and uploads (no network: the upload client is replaced or offline)."""


import huggingface_hub
import pytest
from huggingface_hub import ModelCard

from wkd_hf import hub
from wkd_hf.cards import build_model_card
from wkd_hf.hub_access import HubUnreachableError, hub_advice, hub_unreachable_reason


def render(tmp_path, teacher="someone/pix2pix-facades"):
    card = build_model_card(
        model_name="facades-student", repo_id="me/facades-student", class_name="ResnetGenerator",
        task="facades (BtoA)", resolution=256, command="accelerate launch distill.py --x 1",
        data_description="local folder `facades`", teacher=teacher, datasets=["huggan/facades"],
        profiles=[{"name": "teacher", "params": 11378179, "macs": 49.55e9},
                  {"name": "student", "params": 1606275, "macs": 7.26e9}],
        wkd_settings={"wave": "haar", "levels": 4, "bands": "high"},
        metrics={"validation psnr": "20.1"}, sample_image="samples.png", sample_columns="a | b",
        mode_description="Paired.", extra_tags=["paired"])
    card.save(tmp_path / "README.md")
    return ModelCard.load(tmp_path / "README.md")


def test_card_metadata_and_body(tmp_path):
    card = render(tmp_path)
    data = card.data.to_dict()
    assert data["library_name"] == "wkd_hf"
    assert data["pipeline_tag"] == "image-to-image"
    assert {"wavelet-knowledge-distillation", "image-to-image", "paired"} <= set(data["tags"])
    assert data["base_model"] == "someone/pix2pix-facades"
    assert data["datasets"] == ["huggan/facades"]
    text = card.text
    assert "7.08x params, 6.83x MACs" in text
    assert "11.378M" in text and "49.55G" in text
    assert 'ImageTranslationPipeline.from_pretrained("me/facades-student")' in text
    assert "accelerate launch distill.py --x 1" in text
    assert "| `bands` | high |" in text and "![validation samples](samples.png)" in text


def test_local_teacher_is_not_a_base_model(tmp_path):
    card = render(tmp_path, teacher=str(tmp_path / "my-teacher"))
    assert "base_model" not in card.data.to_dict()
    assert "a local teacher (`my-teacher`)" in card.text and str(tmp_path) not in card.text


def test_push_offline_fails_fast_with_advice(tmp_path, monkeypatch, requested_sleeps):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubUnreachableError, match="HF_HUB_OFFLINE=1.*hf upload") as error:
        hub.push_output_dir(tmp_path, "me/x", token="hf_fake")
    assert sum(requested_sleeps) < 1  # no retry back-off
    assert "Unset HF_HUB_OFFLINE" in str(error.value) and "Check the network" not in str(error.value)


def test_push_unreachable_endpoint_fails_fast(tmp_path, monkeypatch, requested_sleeps):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(HubUnreachableError, match="does not answer.*hf upload") as error:
        hub.push_output_dir(tmp_path, "me/x")
    assert sum(requested_sleeps) < 1  # no retry back-off
    assert "Check the network" in str(error.value) and "HF_HUB_OFFLINE" not in str(error.value)


def test_offline_advice_differs_by_situation(monkeypatch):
    """Offline mode on: turn it off or go local. Hub silent: check the network, go local, or turn
    offline mode on to skip the probe. Never "offline mode is on ... set HF_HUB_OFFLINE=1"."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert hub_unreachable_reason() == "offline mode is on (HF_HUB_OFFLINE=1)"
    offline = hub_advice("pass --train_data_dir")
    assert offline == "Unset HF_HUB_OFFLINE to reach the Hub, or pass --train_data_dir."
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    silent = hub_advice("pass --train_data_dir")
    assert silent.startswith("Check the network (or HF_ENDPOINT), pass --train_data_dir")
    assert "set HF_HUB_OFFLINE=1 to skip this check" in silent and "Unset" not in silent
    assert "HF_HUB_OFFLINE" not in hub_advice("upload later", cache=False)


def test_push_skips_checkpoints_and_logs(tmp_path, monkeypatch):
    calls = {}
    monkeypatch.setattr(hub, "check_hub_reachable", lambda: None)
    monkeypatch.setattr(huggingface_hub, "create_repo",
                        lambda repo_id, **kw: calls.setdefault("repo", (repo_id, kw)) and
                        f"https://hub/{repo_id}")
    monkeypatch.setattr(huggingface_hub, "upload_folder",
                        lambda **kw: calls.setdefault("upload", kw))
    hub.push_output_dir(tmp_path, "me/x", token="hf_fake", private=True)
    assert calls["repo"][1]["private"] is True
    ignored = calls["upload"]["ignore_patterns"]
    assert "checkpoint-*" in ignored and ".checkpoint-*" in ignored and "logs/*" in ignored
    assert ".wkd_hf.lock" in ignored  # the run's output-folder lock is never uploaded


def test_local_dataset_paths_never_reach_the_metadata(tmp_path):
    (tmp_path / "facades").mkdir()
    card = build_model_card(
        model_name="s", repo_id="./s", class_name="ResnetGenerator", task="facades (B -> A)",
        resolution=32, command="x", data_description="a local folder `facades`",
        datasets=[str(tmp_path / "facades"), "./facades", "huggan/facades"],
        profiles=[{"name": "generator", "params": 10, "macs": 10}])
    assert card.data.datasets == ["huggan/facades"]
    assert str(tmp_path) not in card.content
