"""Every subcommand's ``--help``: each option explained, its default shown exactly once."""

from __future__ import annotations

import argparse

import pytest

from tspvideo.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, name: str = "tspvideo"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def _options():
    for name, parser in _parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if (not action.option_strings or action.help == argparse.SUPPRESS
                    or isinstance(action, argparse._HelpAction | argparse._VersionAction)):
                continue
            yield name, action, formatter._expand_help(action) if action.help else ""


OPTIONS = list(_options())


def test_the_walk_sees_every_subcommand():
    names = {name for name, _, _ in OPTIONS}
    assert {"tspvideo train", "tspvideo probe", "tspvideo extract", "tspvideo annotations generic",
            "tspvideo eval detection", "tspvideo synth"} <= names
    assert len(OPTIONS) > 150


@pytest.mark.parametrize("name, action, text", OPTIONS, ids=[f"{n} {a.option_strings[0]}" for n, a, _ in OPTIONS])
def test_each_option_has_help_with_its_default_once(name, action, text):
    assert action.help, f"{name} {action.option_strings[0]} has no help text"
    mentions = text.lower().count("default")
    if action.default is None:
        assert mentions <= 1, f"{name}: {text!r}"  # None means "not set": described in words, or not at all
    else:
        assert mentions == 1, f"{name}: {text!r}"


def test_videos_always_means_video_paths():
    # A count of videos is --num-videos; the old count spelling is a hidden deprecated alias.
    for name, action, _ in OPTIONS:
        if "--videos" in action.option_strings:
            assert action.type is not int, name
        if "--num-videos" in action.option_strings:
            assert action.type is int, name


def test_device_option_is_one_definition_in_every_command():
    """--device means the same in every command: default auto (the GPU when there is one), same help."""
    devices = [(name, action) for name, action, _ in OPTIONS if "--device" in action.option_strings]
    names = {name for name, _ in devices}
    assert {"tspvideo extract", "tspvideo gvf", "tspvideo train", "tspvideo eval clips", "tspvideo demo",
            "tspvideo experiment"} <= names
    assert {(action.default, action.help) for _, action in devices} == {("auto", devices[0][1].help)}
