"""The benchmarks' shared flags and driver helpers: seeds, paths, JSON and markdown, work folders."""

import json
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from benchmarks import harness  # noqa: E402
from benchmarks import markdown  # noqa: E402


@pytest.fixture
def parsed_flags():
    def parse(*args):
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["benchmark", *args])
        return flags.FLAGS

    yield parse
    flags.FLAGS.unparse_flags()


def test_every_benchmark_imports_into_one_process():
    # Each once defined its own --data/--seeds; two in one process then raised DuplicateFlagError.
    from benchmarks import clustering  # noqa: F401
    from benchmarks import distillation  # noqa: F401
    from benchmarks import extras  # noqa: F401
    from benchmarks import pruning  # noqa: F401
    from benchmarks import quantization  # noqa: F401
    from benchmarks import run  # noqa: F401

    assert flags.FLAGS["seeds"].default == ["0", "1", "2"]


@pytest.mark.parametrize(
    "values, message",
    [
        (["a"], "--seeds must be integers. Received: --seeds=a"),
        ([], "at least one seed"),
        (["1", "1"], "must not repeat a seed. Received: --seeds=1,1"),
    ],
)
def test_parse_seeds_refuses_bad_lists(values, message):
    with pytest.raises(app.UsageError, match=message):
        harness.parse_seeds(values)


def test_markdown_path_keeps_benchmarks_md_out_of_quick_runs(tmp_path):
    out = str(tmp_path)
    assert harness.markdown_path_for("extras", out, quick=True) == os.path.join(out, "extras_quick.md")
    assert harness.markdown_path_for("extras", out, quick=False) == os.path.join(REPO_ROOT, "BENCHMARKS.md")
    given = harness.markdown_path_for("extras", out, quick=True, markdown_value="X.md", markdown_given=True)
    assert given == os.path.join(REPO_ROOT, "X.md")
    assert harness.result_stem("extras", True) == "extras_quick" and harness.result_stem("extras", False) == "extras"


def test_options_from_flags_resolve_paths_and_cut_quick_seeds(parsed_flags, tmp_path):
    data = tmp_path / "d.npz"
    data.write_bytes(b"x")
    parsed_flags("--quick", "--seeds=4,5,6", f"--data={data}", f"--output_dir={tmp_path}", "--skip_tfmot")
    options = harness.options_from_flags("clustering", "benchmarks.clustering", quick_seed_count=2)
    assert options.seeds == [4, 5] and options.quick and options.skip_tfmot
    assert options.data == str(data) and options.output_dir == str(tmp_path)
    assert options.markdown_path == os.path.join(str(tmp_path), "clustering_quick.md")
    assert options.command.startswith("python -m benchmarks.clustering")
    parsed_flags("--data=missing.npz")
    with pytest.raises(app.UsageError, match="--data=missing.npz: file not found"):
        harness.options_from_flags("clustering", "benchmarks.clustering")


def test_skipped_tfmot_says_why():
    tfmot = harness.tfmot_for(skip=True)
    assert not tfmot.available and tfmot.reason == "skipped with --skip_tfmot"


def test_write_outputs_puts_a_new_first_section_before_the_others(tmp_path):
    path = str(tmp_path / "B.md")
    markdown.write_section(path, "pruning", "## Pruning\n\nfigures")
    harness.write_outputs(
        {"benchmark": "summary", "section": "## Summary\n\nall", "n": 1}, str(tmp_path / "s.json"), path, first=True
    )
    text = open(path, encoding="utf-8").read()
    assert text.startswith(markdown.HEADER)
    assert text.index("<!-- summary:begin -->") < text.index("<!-- pruning:begin -->")
    assert json.loads((tmp_path / "s.json").read_text()) == {"benchmark": "summary", "n": 1}
    # A rerun replaces the section where it stands.
    harness.write_outputs(
        {"benchmark": "summary", "section": "## Summary\n\nnew"}, str(tmp_path / "s.json"), path, first=True
    )
    text = open(path, encoding="utf-8").read()
    assert text.count("<!-- summary:begin -->") == 1 and "new" in text and "all" not in text
    assert text.index("<!-- summary:begin -->") < text.index("<!-- pruning:begin -->")


def test_replace_section_first_in_a_file_without_sections_appends():
    expected = "# T\n\n<!-- summary:begin -->\ns\n<!-- summary:end -->\n"
    assert markdown.replace_section("# T\n", "summary", "s", first=True) == expected


def test_workdir_passed_in_is_kept_and_an_own_one_removed(tmp_path):
    given, owned = harness.make_workdir("x-", str(tmp_path / "w"))
    assert not owned and os.path.isdir(given)
    harness.finish_workdir(given, keep_files=False, owned=owned)
    assert os.path.isdir(given)
    own, owned = harness.make_workdir("kopt-harness-test-")
    assert owned
    harness.finish_workdir(own, keep_files=False, owned=owned)
    assert not os.path.exists(own)


def test_run_fields_state_when_and_where():
    fields = harness.run_fields(
        "x",
        command="c",
        quick=False,
        started=0.0,
        seeds=[1],
        machine_info={"usable_cores": 2, "cpu_count": 2, "cpu_model": "CPU"},
    )
    assert fields["started_utc"] == "1970-01-01 00:00" and fields["seeds"] == [1]
    assert fields["machine_line"].startswith("2 usable cores of 2 (CPU)")


def test_docstring_examples_run():
    import doctest

    from benchmarks import run

    for module in (harness, run):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_training_examples_names_the_data_a_settings_description_used():
    assert markdown.training_examples(None) == "all training examples"
    assert markdown.training_examples(4000) == "the first 4000 training examples"
