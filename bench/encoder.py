"""Candidate image encoders for the base, cheaply: a CLIP-only build (world, tokenizer, TinyClip) scored by the probe.

    OMP_NUM_THREADS=1 .venv/bin/python bench/encoder.py --steps 2000                      # the shipped recipe, cut to 2,000 steps
    OMP_NUM_THREADS=1 .venv/bin/python bench/encoder.py --steps 2000 --pool patches       # CLIP on the mean patch token
    OMP_NUM_THREADS=1 .venv/bin/python bench/encoder.py --distill --set distill_steps=3000  # the recipe: convnet teacher -> ViT

A full base (`scripts/pretrain_base.py`) takes ~36 minutes; the encoder is what limits `bench/learn.py`'s held-out
task, and this script trains only it: `RECIPE`'s world, tokenizer and CLIP stage (with `--set key=value` overrides),
then the same linear probe as `bench/probe.py` on the 5 new shapes from the ViT's output (what the Q-Former reads),
from 240 and 2,000 images. Compare variants at the same --steps; the CLIP-only ViT at 8,000 steps (tiny-opt v4) gave 0.55 / 0.77.

--distill runs what `RECIPE` now does instead: a convnet CLIP teacher (`ConvClip`, --steps CLIP steps) whose features
the ViT learns to reproduce (`distill_vit`, RECIPE's distill_steps), and probes both (the teacher on its max-pooled map).

--pool chooses what the contrastive loss sees of the ViT: 'cls' (the shipped TinyClip: the pooled [CLS] output; the
last block's outputs at the patch tokens never reach the loss) or 'patches' (the mean of the output patch tokens, the features
the Q-Former cross-attends to).
"""
from __future__ import annotations
import argparse, ast, json, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
import common  # noqa: F401  (threads, quiet warnings)
import torch
import torch.nn.functional as F


def probe_encoder(encode, proc, ns=(240, 2000), n_test:int=500)->dict:
    "The probe of `bench/probe.py` on `encode(pixels) -> {name: (n, d) features}` (models in eval mode): accuracy per name and training-set size."
    from blip2_lora.pretrain import linear_probe
    from probe import task_pixels
    ptr, pte, ytr, yte = task_pixels(proc, max(ns), n_test)      # drawn once for every feature set
    with torch.no_grad(): a, b = encode(ptr), encode(pte)
    return {k: {n: linear_probe(a[k][:n], ytr[:n], b[k], yte) for n in ns} for k in a}


def vit_features(vit, pv)->dict:
    "What the Q-Former reads of the ViT: the output flattened ('out') and its [CLS] token alone ('cls')."
    h = vit(pixel_values=pv).last_hidden_state
    return dict(out=h.flatten(1), cls=h[:, 0])


def report(res:dict, json_path):
    print(json.dumps(res), flush=True)
    if json_path:
        with open(json_path, 'a') as f: f.write(json.dumps(res) + '\n')
    return res


def distilled(a, r, pool, val, tok, proc, cfg, t0)->dict:
    "--distill: the recipe's encoder (ConvClip teacher, then distill_vit), both probed."
    from blip2_lora import pretrain as P
    torch.manual_seed(r['seed']); teacher = P.ConvClip(len(proc.tokenizer), r['teacher'])
    t1 = time.time(); P.pretrain_clip(teacher, pool, tok, r['clip_steps'], r['clip_batch'], r['clip_lr'], r['seed'], 0, r['clip_shape_negatives'])
    t2 = time.time(); torch.manual_seed(r['seed']); vit = P.new_vit(cfg.vision_config)
    log = P.distill_vit(vit, teacher.vision, pool, r['distill_steps'], r['distill_batch'], r['distill_lr'], r['seed'])
    t3 = time.time(); vit.eval(); teacher.eval()
    pr = probe_encoder(lambda pv: dict(vit_features(vit, pv), teacher=teacher.vision(pv).amax((2, 3))), proc)
    return report(dict(steps=r['clip_steps'], distill_steps=r['distill_steps'], set=a.set, clip_recall=P.clip_recall(teacher, val, tok),
                       teacher_probe=pr['teacher'], probe=pr['out'], cls_probe=pr['cls'],
                       distill_loss={k: round(sum(l[k] for l in log[-100:]) / min(100, len(log)), 3) for k in log[-1]},
                       clip_seconds=round(t2 - t1), distill_seconds=round(t3 - t2), threads=torch.get_num_threads(),
                       total_seconds=round(time.time() - t0)), a.json)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=2000, help="CLIP steps (the recipe's teacher has 2,000; tiny-opt v4's CLIP ViT had 8,000)")
    ap.add_argument('--pool', choices=['cls', 'patches'], default='cls', help='what the contrastive loss sees of the ViT')
    ap.add_argument('--distill', action='store_true', help='the recipe: a convnet CLIP teacher, distilled into the ViT')
    ap.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE', help='RECIPE overrides (n_train=40000, vision=(96,4), ...)')
    ap.add_argument('--json', default=None, help='append the result as one JSON line to this file')
    a = ap.parse_args(argv)
    from blip2_lora import pretrain as P
    r = {**P.RECIPE, 'clip_steps': a.steps}
    for kv in a.set:
        k, v = kv.split('=', 1)
        if k not in P.RECIPE: sys.exit(f'unknown recipe key {k!r}: use one of {", ".join(P.RECIPE)}')
        r[k] = ast.literal_eval(v)
    t0 = time.time()
    pool, val = P.WorldPool(r['n_train'], r['seed'], r['image_size']), P.WorldPool(r['n_val'], r['seed'] + 10_000, r['image_size'])
    tok = P.bpe_tokenizer(P.english_corpus(pool.captions[:20_000]), r['vocab_size'])
    proc = P.base_processor(tok, r['image_size'], r['num_query_tokens'])
    cfg = P.base_config(proc, image_size=r['image_size'], patch_size=r['patch_size'], vision=r['vision'], qformer=r['qformer'],
                        lm=r['lm'], num_query_tokens=r['num_query_tokens'])
    if a.distill: return distilled(a, r, pool, val, tok, proc, cfg, t0)
    torch.manual_seed(r['seed']); clip = P.TinyClip(cfg.vision_config, len(proc.tokenizer))
    if a.pool == 'patches':   # the contrastive embedding from the output patch tokens instead of [CLS]
        clip.embed_images = lambda pv: F.normalize(clip.vproj(clip.vision(pixel_values=pv).last_hidden_state[:, 1:].mean(1)), dim=-1)
    t1, steps = time.time(), r['clip_steps']   # --steps, unless --set clip_steps=N overrode it
    log = P.pretrain_clip(clip, pool, tok, steps, r['clip_batch'], r['clip_lr'], r['seed'], 0, r.get('clip_shape_negatives', 0.0))
    secs = time.time() - t1; clip.eval()
    res = dict(steps=steps, pool=a.pool, set=a.set, clip_recall=P.clip_recall(clip, val, tok),
               final_loss=round(sum(l['loss'] for l in log[-100:]) / min(100, len(log)), 3),
               probe=probe_encoder(lambda pv: {'out': vit_features(clip.vision, pv)['out']}, proc)['out'],
               clip_seconds=round(secs), s_per_step=round(secs / steps, 3),
               threads=torch.get_num_threads(), total_seconds=round(time.time() - t0))
    return report(res, a.json)


if __name__ == '__main__': main()
