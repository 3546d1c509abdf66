"""``--help`` of every script: each option says what it means and its default, once, and the
epilog points at README.md's recipes."""

import argparse
import re
import subprocess
import sys

import pytest

from conftest import ROOT, load_script

SCRIPTS = ["distill", "train_teacher", "evaluate", "convert_checkpoint"]
README_SECTIONS = set(re.findall(r"^#+ (.+)$", (ROOT / "README.md").read_text(), re.MULTILINE))


class _Parser(Exception):
    """Carries the parser a script built out of its ``parse_args`` call."""


def script_parser(name: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser ``training_scripts/<name>.py`` builds, caught when it starts parsing."""
    module = load_script(name)
    entry = getattr(module, "parse_args", None) or module.main  # convert_checkpoint: main

    def catch(parser, *args, **kwargs):
        raise _Parser(parser)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", catch)
    with pytest.raises(_Parser) as caught:
        entry([])
    monkeypatch.undo()
    return caught.value.args[0]


def option_helps(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.Action, str]]:
    """``{"--flag": (action, help as printed)}`` for every listed option but -h."""
    formatter = parser._get_formatter()
    return {action.option_strings[0]: (action, formatter._expand_help(action))
            for action in parser._actions
            if action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction)}


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_option_has_help_with_its_default_at_most_once(name, monkeypatch):
    helps = option_helps(script_parser(name, monkeypatch))
    assert helps
    for flag, (action, text) in helps.items():
        meaning = re.sub(r"\(default: [^)]*\)", "", action.help or "").strip()
        assert meaning, f"{name}.py {flag} has no help of its own: {text!r}"
        assert text.lower().count("default") <= 1, f"{name}.py {flag}: {text}"


@pytest.mark.parametrize("name", ["distill", "train_teacher", "evaluate"])
def test_every_option_states_its_default_or_that_it_is_required(name, monkeypatch):
    for flag, (action, text) in option_helps(script_parser(name, monkeypatch)).items():
        said = "(required)" if action.required else "default"
        assert text.lower().count(said) == 1, f"{name}.py {flag}: {text}"


@pytest.mark.parametrize("name", SCRIPTS)
def test_epilog_points_at_a_readme_section(name, monkeypatch):
    epilog = script_parser(name, monkeypatch).epilog or ""
    match = re.fullmatch(r"Recipes: see README\.md, section '(.+)'\.", epilog)
    assert match and match.group(1) in README_SECTIONS, epilog


def test_help_runs_and_ends_with_the_epilog():
    out = subprocess.run([sys.executable, str(ROOT / "training_scripts" / "distill.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert out.rstrip().endswith("Recipes: see README.md, section 'Recipes'.")
    assert "--wkd_levels WKD_LEVELS" in out and "(default: 4)" in out


def test_one_name_for_the_discriminator_depth(monkeypatch):
    """--discriminator_n_layers in both training scripts; --n_layers_D stays a hidden alias."""
    for name in ("distill", "train_teacher"):
        assert "--discriminator_n_layers" in option_helps(script_parser(name, monkeypatch))
    teacher = option_helps(script_parser("train_teacher", monkeypatch))
    assert "--n_layers_D" not in teacher
