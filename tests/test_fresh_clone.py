"""A clone without the shared data folder beside it: the suite still starts, the data tests skip with a reason.

Each check runs pytest in a subprocess with HF_TL_DATA_DIR and HF_TL_SHARED_DIR pointing at an empty folder, so this
module itself needs no data and stays quick (a collection of the suite and a run of three small files).
"""

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow

# Data-free files, plus one whose every test is marked real_data and a tiny_gpt2 test (needs the shared tokenizer).
DATA_FREE = ["tests/test_heads.py", "tests/test_pooling.py"]
MARKED = "tests/test_speed_options.py"
TOKENIZER_TEST = "tests/test_pooling.py::test_decoder_last_token_pooling_is_the_same_with_left_and_right_padding"


def no_data_env(empty, **extra) -> dict:
    env = {**os.environ, "HF_TL_DATA_DIR": str(empty / "data"), "HF_TL_SHARED_DIR": str(empty)}
    env.pop("HF_TL_REQUIRE_DATA", None)  # CI sets it for the suite; a fresh clone does not, unless a test asks
    return {**env, **extra}


def pytest_cmd(basetemp, *args: str) -> list[str]:
    # Own basetemp and no cache: the child must not touch the files of the pytest session that started it.
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--basetemp", str(basetemp), *args]


def collected(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("tests/") and "::" in line]


@pytest.fixture
def empty(tmp_path):
    folder = tmp_path / "no_shared"
    folder.mkdir()
    return folder


def test_without_data_the_whole_suite_collects_the_same_tests(request, empty, tmp_path):
    proc = subprocess.run(pytest_cmd(tmp_path / "collect", "--collect-only", "-q", "tests"), cwd=REPO,
                          env=no_data_env(empty), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    no_data = collected(proc.stdout)
    count = re.search(r"(\d+) tests? collected", proc.stdout)
    assert count and int(count.group(1)) == len(no_data) > 0, proc.stdout[-2000:]
    # Every test this session collected (the whole suite, with the data, in CI) is collected without the data too;
    # comparing with this session spares a second collection.
    assert {item.nodeid for item in request.session.items} <= set(no_data)


def test_without_data_the_data_tests_skip_with_a_reason_and_the_rest_pass(empty, tmp_path):
    proc = subprocess.run(pytest_cmd(tmp_path / "run", "-v", "-rs", *DATA_FREE, MARKED), cwd=REPO,
                          env=no_data_env(empty), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    outcomes = dict(re.findall(r"^(tests/\S+) (PASSED|SKIPPED|FAILED|ERROR)", proc.stdout, re.MULTILINE))
    skipped = {test for test, outcome in outcomes.items() if outcome == "SKIPPED"}
    marked = {test for test in outcomes if test.startswith(MARKED + "::")}
    assert marked and skipped == marked | {TOKENIZER_TEST}, proc.stdout[-4000:]
    assert len(outcomes) - len(skipped) >= 5 and set(outcomes.values()) == {"PASSED", "SKIPPED"}
    # The reasons say where the data and the tokenizer were looked for and how to point at them.
    assert f"real data not found under {empty / 'data'}" in proc.stdout
    assert "HF_TL_DATA_DIR" in proc.stdout and "HF_TL_SHARED_DIR" in proc.stdout
    assert f"GPT-2 tokenizer not found at {empty / 'tokenizers' / 'gpt2'}" in proc.stdout


def test_requiring_the_data_fails_the_run_when_it_is_missing(empty, tmp_path):
    proc = subprocess.run(pytest_cmd(tmp_path / "run", "-q", DATA_FREE[0]), cwd=REPO,
                          env=no_data_env(empty, HF_TL_REQUIRE_DATA="1"), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "passed" not in proc.stdout
    assert "HF_TL_REQUIRE_DATA=1" in proc.stderr and str(empty / "data" / "stsb" / "train.csv") in proc.stderr
