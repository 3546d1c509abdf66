"""Card details a reader trips over: settings that did not apply, and local paths."""

from huggingface_hub import ModelCard

from wkd_hf.cards import method_settings
from wkd_hf.distillation import WKDConfig
from wkd_hf.hub import write_evaluation_results


def test_cycle_cards_do_not_list_the_paired_l1_weight():
    assert "lambda_recon" not in method_settings(WKDConfig(mode="cycle"))
    assert method_settings(WKDConfig(mode="paired"))["lambda_recon"] == 100.0


def test_evaluation_section_masks_local_paths_as_the_training_section_does(tmp_path):
    command = ("python training_scripts/evaluate.py --model /home/someone/runs/student "
               "--train_data_dir /home/someone/data/cityscapes/test --output_dir /tmp/eval")
    record = {"name": "student", "metrics": {"psnr": 20.0}}
    path = write_evaluation_results(tmp_path, record, dataset_name="cityscapes",
                                    dataset_type="cityscapes", dataset_split="test",
                                    task_name="cityscapes (B -> A)", table="| t |",
                                    command=command)
    text = ModelCard.load(path).text
    assert "/home/someone" not in text and "/tmp/eval" not in text
    assert "--train_data_dir '<path to cityscapes>/test'" in text


def test_a_teacher_given_as_one_direction_of_a_cyclegan_folder_is_named_by_that_folder():
    from wkd_hf.cards import teacher_reference

    assert teacher_reference("/runs/h2z_teacher/generator_a2b") == \
        "a local teacher (`h2z_teacher/generator_a2b`)"
    assert teacher_reference("/runs/facades_teacher") == "a local teacher (`facades_teacher`)"


def test_a_generic_data_folder_name_does_not_become_the_cards_title():
    import argparse

    from wkd_hf.cards import task_title

    def title(path):
        return task_title(argparse.Namespace(dataset_name=None, train_data_dir=path,
                                             direction="AtoB"), "paired")

    assert title("/home/me/data") == "custom data (A -> B)"
    assert title("/home/me/work/data/train") == "custom data (A -> B)"
    assert title("/home/me/facades/train") == "facades (A -> B)"


def test_unpaired_student_cards_show_their_distance_to_the_teacher(tmp_path, photo_domains,
                                                                  cycle_teacher):
    from conftest import TINY_RUN, run_script

    out = tmp_path / "student"
    run_script("distill", ["--mode", "cycle", "--teacher_model_name_or_path", str(cycle_teacher),
                           "--train_data_dir", str(photo_domains), "--student_ngf", "4",
                           "--discriminator_ndf", "4", "--wkd_levels", "3", "--pool_size", "3",
                           "--output_dir", str(out), *TINY_RUN, "--train_batch_size", "1"])
    text = ModelCard.load(out / "README.md").text
    assert "## Validation metrics" in text and "validation teacher_l1 (A -> B)" in text
    assert "lambda_recon" not in text
