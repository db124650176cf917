"""Pretrain the tiny BLIP-2 that ships as `blip2-lora/tiny-opt` (blip2_lora/assets/tiny-opt), the way BLIP-2 was built
(nbs/01b_pretrain; what it measures and what it still does poorly, shape, are in its section "The base this recipe builds").

One command, deterministic (same seed, torch version and thread count -> same weights), CPU only:

    .venv/bin/python scripts/pretrain_base.py --out /tmp/tiny-opt     # 36 min on an idle 2-core machine, 15.8 MB

Steps (`blip2_lora.pretrain.build_base` with `RECIPE`): a procedural image world -> a byte-level BPE tokenizer and a
tiny OPT pretrained on the Python docs + the world's captions -> a small convnet trained CLIP-style (with shape-swapped hard
negatives) -> the ViT trained to reproduce its features (distillation) -> stage 1 (Q-Former with ITC, ITM,
ITG on the frozen ViT) -> stage 2 (Q-Former + projection under the frozen LM's loss). Writes a Hugging Face BLIP-2
folder (model.safetensors, processor, generation config), the stage-1 `Blip2ForImageTextRetrieval` in `stage1/`, and
`pretrain.json` (recipe, seconds per step, held-out numbers). The demo's caption template ("a red circle on the
left") never occurs in pretraining, so the demo stays a real fine-tuning task. The shipped folder is this script's
output with the default RECIPE, copied to blip2_lora/assets/tiny-opt; its pretrain.json records the command.
"""
from __future__ import annotations
import argparse, json, os, shutil, sys, time
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default='pretrain_out/tiny-opt', help='folder to write (replaced if it exists)')
    ap.add_argument('--threads', type=int, default=2, help='torch threads (the result depends on it; the shipped base used 2)')
    ap.add_argument('--every', type=int, default=100, help='print the running losses every N steps')
    ap.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE',
                    help='override RECIPE entries, e.g. --set lm_steps=100 seed=1 (values are JSON)')
    a = ap.parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', str(a.threads)); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
    import torch
    from transformers.utils import logging as hf_logging
    from blip2_lora.pretrain import RECIPE, build_base
    torch.set_num_threads(a.threads); torch.use_deterministic_algorithms(True)
    hf_logging.disable_progress_bar(); hf_logging.set_verbosity_error()
    over = {k: json.loads(v) for k, v in (s.split('=', 1) for s in a.set)}
    bad = [k for k in over if k not in RECIPE]
    if bad: sys.exit(f'unknown RECIPE keys {bad}: choose from {", ".join(RECIPE)}')
    out = Path(a.out)
    tmp = out.with_name(out.name + '.partial')
    shutil.rmtree(tmp, ignore_errors=True)
    t = time.time()
    res = build_base(tmp, every=a.every, **over)
    info = json.loads((tmp/'pretrain.json').read_text())
    info.update(total_seconds=round(time.time() - t), threads=a.threads, command=' '.join(['scripts/pretrain_base.py'] + (argv or sys.argv[1:])))
    (tmp/'pretrain.json').write_text(json.dumps(info, indent=1))
    if out.exists(): shutil.rmtree(out)
    tmp.rename(out)
    size = sum(f.stat().st_size for f in out.rglob('*') if f.is_file())
    print(json.dumps({k: v for k, v in info.items() if k != 'recipe'}, indent=1))
    print(f'saved {out} ({size / 1e6:.1f} MB) in {time.time() - t:.0f} s')


if __name__ == '__main__': main()
