"""What the model card claims is true of the run: the method, the data, the command, the base
model, the usage snippet and ``args.json``. Cards are rendered from tiny networks, without training
(``wkd_hf.cards.run_card``), and read back with ``huggingface_hub.ModelCard``."""

import argparse
import json

import pytest
from accelerate import Accelerator
from huggingface_hub import ModelCard

import wkd_hf.run
from conftest import load_script
from wkd_hf import cards
from wkd_hf.distillation import WKDConfig
from wkd_hf.models import PatchDiscriminator, ResnetGenerator, UnetGenerator


def _line(tmp_path, student_ndf, teacher_ndf=None, teacher=True, **kwargs):
    teacher_dir = tmp_path / "teacher"
    ResnetGenerator(ngf=8, n_blocks=1).save_pretrained(teacher_dir)
    if teacher_ndf is not None:
        PatchDiscriminator(in_channels=6, ndf=teacher_ndf).save_pretrained(
            teacher_dir / "discriminator")
    run = wkd_hf.run.GANRun(WKDConfig(bands="none"), {"a2b": ResnetGenerator(ngf=4, n_blocks=1)},
                            {"a2b": PatchDiscriminator(in_channels=6, ndf=student_ndf)},
                            teachers={"a2b": ResnetGenerator(ngf=8, n_blocks=1)} if teacher
                            else None)
    args = argparse.Namespace(teacher_model_name_or_path=str(teacher_dir),
                              teacher_discriminator_path=None, **kwargs)
    return cards.discriminator_description(run, args, Accelerator(cpu=True).unwrap_model)


@pytest.mark.parametrize("student_ndf, teacher_ndf, shrunk", [
    (32, 64, True), (64, 64, False), (16, 8, False), (8, 16, True), (32, None, True),
    (64, None, False), (128, None, False)])
def test_shrunk_only_when_narrower_than_the_teachers(tmp_path, student_ndf, teacher_ndf, shrunk):
    line = _line(tmp_path, student_ndf, teacher_ndf)
    assert ("shrunk with the student, as the paper recommends" in line) == shrunk
    assert f"ndf {student_ndf}" in line
    reference = f"the teacher's ndf {teacher_ndf}" if teacher_ndf else "reference PatchGAN's ndf 64"
    assert reference in line
    if not shrunk:
        assert "not shrunk" in line


def test_a_teacher_run_makes_no_claim(tmp_path):
    line = _line(tmp_path, 64, teacher=False)
    assert "shrunk" not in line and line.endswith("training only).")


# ----------------------------------------------------------------------------- whole cards
@pytest.fixture
def facades(tmp_path):
    """A local dataset laid out as pix2pix's: ``.../facades/train``."""
    folder = tmp_path / "datasets" / "facades" / "train"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def local_teacher(tmp_path):
    folder = tmp_path / "teachers" / "facades-teacher"
    ResnetGenerator(ngf=8, n_blocks=1).save_pretrained(folder)
    return folder


def _args(tmp_path, facades, local_teacher, **overrides):
    values = dict(output_dir=str(tmp_path / "runs" / "student"), hub_model_id=None,
                  dataset_name=None, dataset_config_name=None, train_data_dir=str(facades),
                  direction="BtoA", resolution=32, streaming=False,
                  teacher_model_name_or_path=str(local_teacher), teacher_discriminator_path=None)
    return argparse.Namespace(**{**values, **overrides})


def _card(tmp_path, args, config=None, teacher=True, command="accelerate launch x.py",
          generator=None):
    """Render the run's card as export does, and load it back as the Hub would."""
    config = config or WKDConfig()
    keys = ("a2b", "b2a") if config.mode == "cycle" else ("a2b",)
    generators = {k: generator or ResnetGenerator(ngf=4, n_blocks=1) for k in keys}
    channels = 6 if config.mode == "paired" else 3
    run = wkd_hf.run.GANRun(
        config, generators, {k: PatchDiscriminator(in_channels=channels, ndf=4) for k in keys},
        teachers={k: ResnetGenerator(ngf=8, n_blocks=1) for k in keys} if teacher else None)
    path = cards.write_run_card(
        tmp_path, run, args, generators, command,
        teacher_name=args.teacher_model_name_or_path if teacher else None)
    return ModelCard.load(path)


def _intro(card):
    return card.text.split("## Efficiency")[0]


def test_card_assembly_lives_with_the_card_code():
    """run.py exports through one call; the card's pieces live in wkd_hf.cards."""
    for name in ("build_model_card", "MODE_DESCRIPTIONS", "_write_card", "_task",
                 "_method_settings", "_discriminator_description"):
        assert not hasattr(wkd_hf.run, name) and not hasattr(wkd_hf.run.RunSession, name), name
    assert wkd_hf.run.write_run_card is cards.write_run_card


@pytest.mark.parametrize("bands, says, never", [
    ("high", ["LH/HL/HH (high-frequency) bands of every level of a 3-level `db2` DWT",
              "the paper's method", "L2 distance", "weight 0.7"], ["LL"]),
    ("low", ["the LL (low-frequency) band of a 3-level `db2` DWT only", "an ablation"],
     ["LH/HL/HH (high-frequency) bands of every", "(the paper's method)"]),
    ("all", ["every band of a 3-level `db2` DWT: LL and the LH/HL/HH bands of every level"],
     ["(the paper's method)"]),
    ("none", ["No distillation term (`--wkd_bands none`): a plain pix2pix student trained from "
              "scratch at the student's width (ngf 4)", "no-distillation baseline"],
     ["wavelet", "Wavelet", "distilled from", "DWT"]),
])
def test_the_mode_description_says_what_was_distilled(tmp_path, facades, local_teacher, bands,
                                                      says, never):
    config = WKDConfig(bands=bands, wave="db2", levels=3, distance="l2", lambda_wkd=0.7)
    card = _card(tmp_path, _args(tmp_path, facades, local_teacher), config)
    intro = _intro(card)
    for text in says:
        assert text in intro, text
    for text in never:
        assert text not in intro, text
    tags = set(card.data.tags)
    assert (cards.WKD_TAG in tags) == (bands != "none")
    assert (cards.KD_TAG in tags) == (bands != "none")
    settings = card.text.split("## Distillation settings")[1].split("##")[0]
    assert ("`levels`" in settings) == (bands != "none")  # no DWT settings for no DWT term


def test_no_wavelet_term_with_output_kd_names_only_the_kd(tmp_path, facades, local_teacher):
    config = WKDConfig(mode="cycle", bands="none", kd_output_weight=2.0)
    card = _card(tmp_path, _args(tmp_path, facades, local_teacher), config)
    intro = _intro(card)
    assert "full CycleGAN objective" in intro
    assert "output KD (L1 to the teacher's output, weight 2)" in intro
    assert "avelet" not in intro
    assert cards.KD_TAG in card.data.tags and cards.WKD_TAG not in card.data.tags


@pytest.mark.parametrize("mode, family", [("paired", "pix2pix"), ("cycle", "CycleGAN")])
def test_a_teacher_card_claims_no_distillation(tmp_path, facades, local_teacher, mode, family):
    config = WKDConfig(mode=mode, bands="none", conditional_discriminator=mode == "paired")
    args = _args(tmp_path, facades, local_teacher, output_dir=str(tmp_path / "my-teacher"))
    card = _card(tmp_path, args, config, teacher=False)
    intro = _intro(card)
    assert f"A {family} teacher generator for **facades" in intro
    assert "trained from scratch with `wkd_hf` (no distillation)" in intro
    assert "Wavelet Knowledge Distillation" not in card.text and "distilled" not in card.text
    assert "student" not in intro and "## Distillation settings" not in card.text
    tags = set(card.data.tags)
    assert not tags & {cards.WKD_TAG, cards.KD_TAG}
    assert {"wkd_hf", "image-to-image", family.lower(), mode} <= tags
    assert "base_model" not in card.data.to_dict()


@pytest.mark.parametrize("mode, direction, title", [
    ("paired", "BtoA", "facades (B -> A)"), ("teacher_target", "AtoB", "facades (A -> B)"),
    ("cycle", "BtoA", "facades (A <-> B)")])
def test_the_title_names_the_dataset_and_a_direction_that_means_something(
        tmp_path, facades, local_teacher, mode, direction, title):
    data = facades if mode != "cycle" else facades.parent  # trainA/ + trainB/ live in facades/
    args = _args(tmp_path, facades, local_teacher, train_data_dir=str(data), direction=direction)
    card = _card(tmp_path, args, WKDConfig(mode=mode))
    assert f"for **{title}**" in card.text
    assert "AtoB" not in card.text and "BtoA" not in card.text
    assert str(tmp_path) not in card.text


def test_a_hub_dataset_is_the_title_and_the_metadata(tmp_path, facades, local_teacher):
    args = _args(tmp_path, facades, local_teacher, train_data_dir=None,
                 dataset_name="huggan/facades")
    card = _card(tmp_path, args)
    assert card.data.datasets == ["huggan/facades"]
    assert "for **huggan/facades (B -> A)**" in card.text
    assert "[`huggan/facades`](https://huggingface.co/datasets/huggan/facades)" in card.text


def test_a_local_dataset_name_stays_out_of_the_metadata(tmp_path, facades, local_teacher):
    args = _args(tmp_path, facades, local_teacher, train_data_dir=None,
                 dataset_name=str(facades.parent))
    assert cards.hub_datasets(args) == []
    card = _card(tmp_path, args)
    assert "datasets" not in card.data.to_dict()
    assert "Data: a local folder `facades`" in card.text
    assert str(tmp_path) not in card.content


def test_the_training_command_is_a_recipe(tmp_path, facades, local_teacher):
    out = tmp_path / "runs" / "student"
    command = (f"accelerate launch training_scripts/distill.py --teacher_model_name_or_path "
               f"{local_teacher} --train_data_dir {facades} --output_dir {out} "
               "--resume_from_checkpoint latest --overwrite_output_dir --hub_token=*** "
               f"--cache_dir={tmp_path / 'cache'} --student_ngf 4")
    card = _card(tmp_path, _args(tmp_path, facades, local_teacher, output_dir=str(out)),
                 command=command)
    (block,) = card.text.split("```bash\n")[1:]
    block = block.split("```")[0]
    assert str(tmp_path) not in card.content
    for gone in ("--resume_from_checkpoint", "latest", "--overwrite_output_dir", "--hub_token"):
        assert gone not in block, gone
    assert "--train_data_dir '<path to facades>/train'" in block
    assert "--teacher_model_name_or_path '<path to facades-teacher>'" in block
    assert "--output_dir student" in block and "'--cache_dir=<path to cache>'" in block
    assert "--student_ngf 4" in block and "Replace each `<path to ...>`" in card.text


@pytest.mark.parametrize("spelling", [["--resume_from_checkpoint=latest"],
                                      ["--resume_from_checkpoint", "checkpoint-4"],
                                      ["--hub_token", "***"]])
def test_recipe_command_drops_run_only_options_in_any_spelling(spelling):
    line = cards.recipe_command(" ".join(["accelerate launch d.py", *spelling, "--seed", "0"]))
    assert line == "accelerate launch d.py --seed 0"


@pytest.mark.parametrize("teacher, hub_id, base_model", [
    ("local", None, None), ("local", "me/facades-teacher", "me/facades-teacher"),
    ("someone/pix2pix-facades", None, "someone/pix2pix-facades")])
def test_base_model_is_a_hub_id_never_a_local_path(tmp_path, facades, local_teacher, teacher,
                                                   hub_id, base_model):
    name = str(local_teacher) if teacher == "local" else teacher
    args = _args(tmp_path, facades, local_teacher, teacher_model_name_or_path=name,
                 teacher_hub_id=hub_id)
    card = _card(tmp_path, args, command=f"accelerate launch d.py --teacher_model_name_or_path "
                                         f"{name}")
    assert card.data.to_dict().get("base_model") == base_model
    if base_model:
        assert f"[`{base_model}`](https://huggingface.co/{base_model})" in _intro(card)
        assert f"--teacher_model_name_or_path {base_model}" in card.text  # a recipe to re-run
    else:
        assert "a local teacher (`facades-teacher`)" in _intro(card)
    assert str(tmp_path) not in card.content


def test_a_bad_teacher_hub_id_is_no_base_model(tmp_path, facades, local_teacher):
    args = _args(tmp_path, facades, local_teacher, teacher_hub_id=str(local_teacher))
    assert "base_model" not in _card(tmp_path, args).data.to_dict()


@pytest.mark.parametrize("hub_model_id", [None, "me/facades-student"])
def test_the_usage_snippet_loads_what_exists(tmp_path, facades, local_teacher, hub_model_id):
    card = _card(tmp_path, _args(tmp_path, facades, local_teacher, hub_model_id=hub_model_id))
    repo = hub_model_id or "./student"
    assert f'ImageTranslationPipeline.from_pretrained("{repo}")' in card.text
    assert "your-username" not in card.text
    assert ("replace it with the repo id" in card.text) == (hub_model_id is None)


# ----------------------------------------------------------------------------- args.json
def _saved_args(tmp_path, script, argv, config, generator):
    args = load_script(script).parse_args(["--output_dir", str(tmp_path / "o"),
                                           "--train_data_dir", str(tmp_path), *argv])
    cards.save_applicable_args(args, config, generator, tmp_path)
    return json.loads((tmp_path / "args.json").read_text())


def test_args_json_of_a_paired_resnet_teacher(tmp_path):
    saved = _saved_args(tmp_path, "train_teacher", ["--hub_token", "hf_secret_0123"],
                        WKDConfig(bands="none"), ResnetGenerator(ngf=4, n_blocks=1))
    assert {"n_blocks", "block_type", "lambda_recon", "direction", "mode"} <= set(saved)
    for gone in ("num_downs", "lambda_cycle", "lambda_identity", "pool_size", "hub_token",
                 "domain_a_column", "shuffle_buffer_size", "lr_warmup_steps"):
        assert gone not in saved, gone


def test_args_json_of_a_cycle_unet_teacher(tmp_path):
    saved = _saved_args(tmp_path, "train_teacher", ["--mode", "cycle", "--generator", "unet"],
                        WKDConfig(mode="cycle", bands="none"), UnetGenerator(ngf=4, num_downs=5))
    assert {"num_downs", "lambda_cycle", "pool_size", "domain_a_column"} <= set(saved)
    for gone in ("n_blocks", "block_type", "lambda_recon", "direction", "source_column"):
        assert gone not in saved, gone


def test_args_json_of_a_student_without_feature_kd(tmp_path):
    saved = _saved_args(tmp_path, "distill", ["--teacher_model_name_or_path", "t",
                                              "--wkd_bands", "none"],
                        WKDConfig(bands="none"), ResnetGenerator(ngf=4, n_blocks=1))
    for gone in ("kd_feature_layers", "wkd_levels", "wkd_wave", "lambda_wkd", "lambda_cycle",
                 "student_macs_budget"):
        assert gone not in saved, gone
    assert {"wkd_bands", "kd_output_weight", "student_ngf", "teacher_model_name_or_path"} <= \
        set(saved)
