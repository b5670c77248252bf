"""Every run is a standard model: its root loads in sentence-transformers, transformers or PEFT, in a process where
hf_tl cannot be imported, and predicts what ``hf_tl.load_run`` predicts; from the loopback Hub by repo id too."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA_DIR, MRPC_ARGS, REPO, SST2_ARGS, run_recipe, tiny_args, train_argv
from huggingface_hub import ModelCard

import hf_tl

pytestmark = pytest.mark.real_data  # the runs train on slices of the real data files

PAIRS = [("A man is playing a guitar.", "A man plays the guitar."), ("The cat sleeps.", "Stocks fell sharply."),
         ("Hi", "Hello there, how are you doing today?")]
TEXTS = ["a gripping, beautifully acted film", "terrible, boring and far too long", "ok"]

# The standard client: loads MODEL (a folder or a repo id) and prints its raw outputs for INPUTS as JSON. hf_tl is
# made unimportable first, so nothing of hf_tl can take part.
CLIENT = r'''
import json, sys
sys.modules["hf_tl"] = None
fmt, model_id, inputs, labels = json.loads(sys.argv[1])
pairs = isinstance(inputs[0], list)
if fmt == "sentence-transformers":
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(model_id, device="cpu")
    a = model.encode([x for x, _ in inputs], convert_to_tensor=True)
    b = model.encode([y for _, y in inputs], convert_to_tensor=True)
    out = {"raw": model.similarity_pairwise(a, b).tolist()}
elif fmt == "cross-encoder":
    from sentence_transformers import CrossEncoder
    model = CrossEncoder(model_id, device="cpu")
    scores = model.predict([tuple(p) for p in inputs])
    out = {"raw": scores.tolist()}
    if scores.ndim == 2:
        out["labels"] = [model.config.id2label[i] for i in scores.argmax(1).tolist()]
elif fmt == "transformers":
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
    classifier = pipeline("text-classification", model=model_id, device="cpu")
    regression = classifier.model.config.num_labels == 1
    texts = [{"text": a, "text_pair": b} for a, b in inputs] if pairs else inputs
    answers = classifier(texts, function_to_apply="none") if regression else classifier(texts)
    model = AutoModelForSequenceClassification.from_pretrained(model_id).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_id)
    enc = tokenizer(*(zip(*inputs) if pairs else [inputs]), padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    out = {"raw": logits.squeeze(-1).tolist() if regression else logits.tolist(),
           "pipeline": [a["score"] if regression else a["label"] for a in answers]}
else:
    import torch
    from peft import AutoPeftModelForSequenceClassification
    from transformers import AutoTokenizer
    kwargs = {"num_labels": len(labels), "id2label": dict(enumerate(labels))} if labels else {"num_labels": 1}
    model = AutoPeftModelForSequenceClassification.from_pretrained(model_id, **kwargs).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_id)
    enc = tokenizer(*(zip(*inputs) if pairs else [inputs]), padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    out = {"raw": logits.squeeze(-1).tolist() if not labels else logits.tolist()}
    if labels:
        out["labels"] = [model.config.id2label[i] for i in logits.argmax(-1).tolist()]
print(json.dumps(out))
'''


def standard_client(fmt, model_id, inputs, labels=None, env=None) -> dict:
    args = json.dumps([fmt, str(model_id), [list(i) if isinstance(i, tuple) else i for i in inputs], labels])
    proc = subprocess.run([sys.executable, "-c", CLIENT, args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def hf_tl_outputs(run):
    """hf_tl's predictions and the scores a standard client should give: a bi-encoder's cosine (hf_tl reports it on
    the data's scale), a cross-encoder's or classifier's scores on the data's scale, or class logits."""
    loaded = hf_tl.load_run(run, device="cpu")
    name, task = loaded.task()
    inputs = PAIRS if task.pair else TEXTS
    raw = loaded.predict_raw(inputs)
    data = task.data
    if data.task == "similarity" and data.architecture != "bi_encoder":
        raw = raw * (data.score_max - data.score_min) + data.score_min  # the standard model returns the data scale
    return inputs, loaded.predict(inputs), raw, getattr(task, "label_names", None) if data.task != "similarity" \
        else None


def hf_tl_outputs_in_child(run, env):
    """:func:`hf_tl_outputs` computed in a child process with ``env`` (a run whose base is on the loopback Hub)."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[2]); from test_standard import hf_tl_outputs; "
            "i, p, r, l = hf_tl_outputs(sys.argv[1]); print(json.dumps([i, p, r.tolist(), l]))")
    proc = subprocess.run([sys.executable, "-c", code, str(run), str(REPO / "tests")], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    inputs, predictions, raw, labels = json.loads(proc.stdout.strip().splitlines()[-1])
    return [tuple(i) if isinstance(i, list) else i for i in inputs], predictions, np.asarray(raw), labels


def assert_same(run, fmt, model_id=None, env=None, ours=None):
    inputs, predictions, raw, labels = ours or hf_tl_outputs(run)
    theirs = standard_client(fmt, model_id or run, inputs, labels, env)
    assert np.abs(np.asarray(theirs["raw"]) - raw).max() < 1e-4, (theirs["raw"], raw)
    if labels:
        assert theirs.get("labels", theirs.get("pipeline")) == predictions
    elif "pipeline" in theirs:
        assert np.allclose(theirs["pipeline"], predictions, atol=1e-4)


KINDS = {  # name: (recipe, model fixture, data flags (None: STS-B), flags, format at the root)
    "bi_encoder_mlp": ("text_similarity", "tiny_bert", None, ["--architecture", "bi_encoder", "--head_type", "mlp"],
                       "sentence-transformers"),
    "similarity_cross_encoder": ("text_similarity", "tiny_bert", None, ["--pooling", "cls"], "cross-encoder"),
    "pair_classification_mlp": ("paraphrase", "tiny_bert", MRPC_ARGS, ["--head_type", "mlp"], "cross-encoder"),
    "classification_native": ("sentiment", "tiny_bert", SST2_ARGS, ["--head_type", "native"], "transformers"),
    "similarity_native": ("text_similarity", "tiny_bert", None, ["--head_type", "native"], "transformers"),
    "lora_native": ("sentiment", "tiny_bert", SST2_ARGS, ["--head_type", "native", "--strategy", "lora"], "peft"),
    "ia3_cross_encoder": ("text_similarity", "tiny_bert", None, ["--strategy", "ia3"], "cross-encoder"),
    "lora_bi_encoder": ("text_similarity", "tiny_bert", None, ["--architecture", "bi_encoder", "--head_type", "none",
                                                               "--strategy", "lora"], "sentence-transformers"),
    "gpt2_bi_encoder": ("text_similarity", "tiny_gpt2", None, ["--architecture", "bi_encoder", "--head_type",
                                                               "linear"], "sentence-transformers"),
    "gpt2_classification_native": ("sentiment", "tiny_gpt2", SST2_ARGS, ["--head_type", "native"], "transformers"),
}


def train_kind(request, tmp_path, kind):
    recipe, fixture, data, flags, fmt = KINDS[kind]
    run = tmp_path / kind
    run_recipe(tiny_args(request.getfixturevalue(fixture), run, *flags, train=32, dev=16, data=data), recipe)
    return run, fmt




@pytest.mark.parametrize("kind", list(KINDS))
def test_the_run_root_loads_in_the_standard_library_and_predicts_the_same(request, tmp_path, hub, kind):
    """The run folder, and the repo it is pushed to (by repo id, through HF_ENDPOINT), load in the standard library
    and predict what hf_tl predicts; the card names that library and shows its code first."""
    run, fmt = train_kind(request, tmp_path, kind)
    info = json.loads((run / "standard_model.json").read_text())
    assert info["format"] == fmt
    assert_same(run, fmt)
    card = ModelCard.load(run / "README.md")
    assert card.data.library_name == {"sentence-transformers": "sentence-transformers",
                                      "cross-encoder": "sentence-transformers"}.get(fmt, fmt)
    data = KINDS[kind][2]
    task = "similarity" if data is None else "pair_classification" if data is MRPC_ARGS else "classification"
    assert card.data.pipeline_tag == ("sentence-similarity" if fmt == "sentence-transformers" else "text-ranking"
                                      if fmt == "cross-encoder" and task == "similarity" else "text-classification")
    assert card.data.datasets == (["sentence-transformers/stsb"] if data is None else ["nyu-mll/glue"])
    assert "hf_tl.load_run" in card.text and card.text.index(info["loader"].split(".")[-1]) < \
        card.text.index("hf_tl.load_run")  # the standard loader's code comes first
    if fmt != "peft":  # an adapter needs its base on the Hub: test_a_pushed_adapter_loads_with_its_hub_base_in_peft
        check_pushed(run, fmt, f"alice/{kind.replace('_', '-')}", hub, tmp_path)


@pytest.mark.parametrize("flags, reason", [
    (["--head_type", "linear"], "head_type native"),
    (["--head_type", "native", "--layer", "mean_last4"], "head_type native reads the last layer"),
])
def test_a_classifier_without_a_standard_form_says_why(tiny_bert, tmp_path, capsys, flags, reason):
    run = tmp_path / "run"
    if "--layer" in flags:
        with pytest.raises(hf_tl.HfTlError, match=reason):
            train_argv(tiny_args(tiny_bert, run, *flags, data=SST2_ARGS))
        return
    run_recipe(tiny_args(tiny_bert, run, *flags, data=SST2_ARGS), "sentiment")
    info = json.loads((run / "standard_model.json").read_text())
    assert info["format"] is None and reason in info["reason"]
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "no standard loader" in last and reason in last
    card = ModelCard.load(run / "README.md")
    assert card.data.library_name is None and "No standard loader loads this run" in card.text
    assert not (run / "config.json").exists()


@pytest.mark.parametrize("kind, fmt, merge, message", [
    ("lora_native", "transformers", False, "add --merge"),
    ("bi_encoder_mlp", "cross-encoder", False, "choose --format sentence-transformers"),
    ("pair_classification_mlp", "transformers", False, "train with head_type native"),
    ("similarity_cross_encoder", "peft", False, "train with head_type native"),
    ("gpt2_classification_native", "sentence-transformers", False, "embeds single texts"),
])
def test_export_refuses_what_it_cannot_express(request, tmp_path, capsys, kind, fmt, merge, message):
    from hf_tl.cli import main as cli

    run, _ = train_kind(request, tmp_path, kind)
    capsys.readouterr()  # what training printed
    with pytest.raises(SystemExit) as stop:
        cli(["export", str(run), "--format", fmt, "--output", str(tmp_path / "out")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hf_tl error: Cannot export '{run}' as {fmt}: ") and message in err
    assert err.count("\n") == 1  # one sentence, nothing loaded before it
    assert not (tmp_path / "out").exists()


def test_export_merge_writes_the_merged_standard_model(request, tmp_path):
    from hf_tl.cli import main as cli

    run, _ = train_kind(request, tmp_path, "lora_native")
    out = tmp_path / "merged"
    cli(["export", str(run), "--format", "transformers", "--merge", "--output", str(out)])
    inputs, predictions, raw, labels = hf_tl_outputs(run)
    theirs = standard_client("transformers", out, inputs, labels)
    assert np.abs(np.asarray(theirs["raw"]) - raw).max() < 1e-4 and theirs["pipeline"] == predictions
    with pytest.raises(SystemExit):  # an existing folder is never replaced without --overwrite
        cli(["export", str(run), "--format", "transformers", "--merge", "--output", str(out)])
    cli(["export", str(run), "--format", "transformers", "--merge", "--output", str(out), "--overwrite"])


def test_a_run_made_before_runs_held_a_standard_model_exports(request, tmp_path):
    """Runs written before this change have no root model: hf-tl export writes one from their own folders."""
    from hf_tl.cli import main as cli
    from hf_tl.standard.place import remove_root_model

    run, fmt = train_kind(request, tmp_path, "similarity_cross_encoder")
    remove_root_model(run)
    assert not (run / "modules.json").exists() and not (run / "standard_model.json").exists()
    out = tmp_path / "exported"
    cli(["export", str(run), "--format", "cross-encoder", "--output", str(out)])
    inputs, _, raw, _ = hf_tl_outputs(run)
    assert np.abs(np.asarray(standard_client(fmt, out, inputs)["raw"]) - raw).max() < 1e-4


def test_load_run_loads_plain_standard_folders_as_zero_shot_runs(request, tmp_path, tiny_bert):
    """The other direction: a plain transformers folder and a sentence-transformers folder load as zero-shot
    bi-encoders that score what sentence-transformers scores."""
    run, _ = train_kind(request, tmp_path, "bi_encoder_mlp")
    plain = hf_tl.load_run(tiny_bert, device="cpu")
    assert plain.config.strategy.strategy == "zero_shot" and plain.tasks["similarity"].bi_encoder
    exported = tmp_path / "st"
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    SentenceTransformer(modules=[Transformer(tiny_bert), Pooling(32, "cls")]).save(str(exported))
    loaded = hf_tl.load_run(exported, device="cpu")
    assert loaded.model.pooling == "cls"
    cosine = standard_client("sentence-transformers", exported, PAIRS)["raw"]
    assert np.abs(loaded.predict_raw(PAIRS) - np.asarray(cosine)).max() < 1e-5
    with pytest.raises(hf_tl.HfTlError, match="Dense"):  # the bi-encoder run's root has Dense layers
        hf_tl.load_run(_copy_root(run, tmp_path / "root"), device="cpu")


def _copy_root(run, target):
    """The standard files of a run's root alone (no hf_tl record), as a user copying the model would have."""
    import shutil

    target.mkdir()
    for name in json.loads((run / "standard_model.json").read_text())["files"]:
        source = run / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target / name)
    return target


def hub_env(hub, tmp_path) -> dict:
    """A child process's environment that reaches the loopback Hub (and only it)."""
    return {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "client_home"),
            "HF_TOKEN": os.environ["HF_TOKEN"]}


def check_pushed(run, fmt, repo, hub, tmp_path, ours=None):
    """Push ``run`` and load it by repo id with the standard client; no repo file names a local absolute path."""
    from hf_tl.hub import ABSOLUTE_PATH, TOKENIZER_FILES, push_folder

    push_folder(run, repo)
    assert_same(run, fmt, model_id=repo, env=hub_env(hub, tmp_path), ours=ours)
    texts = {name: data.decode() for name, data in hub.repos[repo].files.items()
             if name.endswith((".json", ".yaml", ".md", ".jsonl", ".txt")) and Path(name).name not in TOKENIZER_FILES}
    for name in {n for n in hub.repos[repo].files if Path(n).name in TOKENIZER_FILES}:  # tokens are not paths
        assert hub.repos[repo].files[name] == (run / name).read_bytes()
    leaks = {name: ABSOLUTE_PATH.findall(text) for name, text in texts.items() if ABSOLUTE_PATH.search(text)}
    assert not leaks and str(tmp_path) not in "".join(texts.values())
    return ModelCard(texts["README.md"])


def test_a_pushed_adapter_loads_with_its_hub_base_in_peft(tmp_path, hub, tiny_bert):
    """A PEFT run whose base is a Hub model: AutoPeftModelForSequenceClassification loads the pushed adapter by repo
    id and its base by the Hub id the adapter names (trained in a child process that reaches the loopback Hub)."""
    from huggingface_hub import HfApi

    HfApi(endpoint=hub.url).create_repo("alice/tiny-bert", exist_ok=True)
    HfApi(endpoint=hub.url).upload_folder(folder_path=tiny_bert, repo_id="alice/tiny-bert")
    run = tmp_path / "lora_native"
    cmd = [sys.executable, str(REPO / "recipes" / "sentiment.py"),
           *tiny_args("alice/tiny-bert", run, "--head_type", "native", "--strategy", "lora", train=32, dev=16,
                      data=SST2_ARGS)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, **hub_env(hub, tmp_path), "HF_TL_DATA_DIR": str(DATA_DIR)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((run / "adapter_config.json").read_text())["base_model_name_or_path"] == "alice/tiny-bert"
    ours = hf_tl_outputs_in_child(run, hub_env(hub, tmp_path))  # the base is on the loopback Hub only
    check_pushed(run, "peft", "alice/lora-native", hub, tmp_path, ours=ours)


def test_writing_the_root_again_replaces_the_standard_files_only(request, tmp_path):
    """A resumed or re-exported run rewrites its root model: files of the earlier one go, hf_tl's record stays."""
    import hashlib

    from hf_tl.config_io import load_config
    from hf_tl.runs import run_kind_of
    from hf_tl.standard.place import write_root_model

    run, fmt = train_kind(request, tmp_path, "similarity_cross_encoder")
    record = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.iterdir()
              if p.name in ("config.yaml", "eval_results.json", "lineage.json", "README.md")}
    info = json.loads((run / "standard_model.json").read_text())
    (run / "stale_weights.bin").write_bytes(b"from an earlier form")
    (run / "standard_model.json").write_text(json.dumps({**info, "files": [*info["files"], "stale_weights.bin"]}))
    config = load_config(run / "config.yaml")
    again = write_root_model(run, config, run_kind_of(config))
    assert again == info and not (run / "stale_weights.bin").exists()
    assert not [p for p in run.iterdir() if ".tmp-" in p.name]  # no staging left behind
    assert record == {name: hashlib.sha256((run / name).read_bytes()).hexdigest() for name in record}
    assert_same(run, fmt)


def test_native_head_is_refused_for_a_model_type_with_another_standard_head():
    from transformers import RobertaConfig

    from hf_tl.backbone import native_head_style

    with pytest.raises(hf_tl.HfTlError, match="model type 'roberta' has another"):
        native_head_style(RobertaConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                        intermediate_size=64), is_decoder=False)


def test_load_run_refuses_a_plain_folder_whose_head_it_would_drop(request, tmp_path):
    """A sequence classifier (here a native-head run's root, copied alone) keeps its head: load_run says which library
    uses it instead of scoring with the bare encoder."""
    run, _ = train_kind(request, tmp_path, "classification_native")
    with pytest.raises(hf_tl.HfTlError, match="is a BertForSequenceClassification.*transformers"):
        hf_tl.load_run(_copy_root(run, tmp_path / "root"), device="cpu")
