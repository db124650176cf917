#!/usr/bin/env bash
# `make gpu-pack`: what the GPU machine's image lacks, for `make test-gpu` there (the device machine reaches no
# registry). Writes .gpu/ (git-ignored; carry it: device run with carry=['.gpu']):
#   .gpu/wheels/  wheels for Python 3.12 / manylinux x86-64 of the packages the image does not have
#   .gpu/site/    pycocoevalcap's BLEU and CIDEr scorers only (the wheel is 104 MB of Java jars we never use)
# tools/gpu_lane.py installs them into a temporary folder before its steps. Total about 45 MB (travel limit 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/site
PLAT="--platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
# pins = this project's (settings.ini); the image already has torch, transformers, peft, accelerate, numpy, pyarrow,
# pandas, xxhash, fsspec, huggingface-hub, tokenizers, safetensors, pillow, matplotlib, tqdm, pytest(-xdist), sacrebleu
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLAT -d .gpu/wheels \
  bitsandbytes==0.50.2 datasets dill multiprocess fastcore==1.14.5 execnb==0.1.18 ipython ipython-pygments-lexers \
  decorator jedi parso matplotlib-inline pexpect ptyprocess prompt-toolkit wcwidth stack-data executing asttokens \
  pure-eval traitlets
$PY -m pip download -q --no-deps --only-binary=:all: -d /tmp/gpu-pack-coco pycocoevalcap==1.2
$PY - <<'PYEOF'
import zipfile, glob
z = zipfile.ZipFile(glob.glob('/tmp/gpu-pack-coco/pycocoevalcap-*.whl')[0])
for n in z.namelist():
    if n.endswith('.py') and n.split('/')[1] in ('__init__.py', 'bleu', 'cider'): z.extract(n, '.gpu/site')
PYEOF
du -sh .gpu
