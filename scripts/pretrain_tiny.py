"""Pretrain the tiny BLIP-2 that blip2-lora ships as `blip2-lora/tiny-opt` (blip2_lora/assets/tiny-opt/).

A random BLIP-2 cannot tell shapes apart, and LoRA on its language model cannot fix that (issue 8). So the
project pretrains the *whole* tiny model once, with transformers' `Trainer`, on Pillow-drawn shapes whose captions
use a different sentence template from the demo's:

    pretraining:  "the circle is red , left"        (this script)
    demo:         "a red circle on the left"        (blip2_lora.data.caption_of; the demo fine-tunes LoRA to it)

so the shipped base knows colours, shapes and positions but scores 0 exact match on the demo's captions: the
demo is real domain adaptation of the caption style, learned by LoRA from images.

Deterministic: same seed, torch version and thread count -> same weights. Run (about 10-20 min on 1 CPU thread):

    OMP_NUM_THREADS=1 .venv/bin/python scripts/pretrain_tiny.py --out blip2_lora/assets/tiny-opt
"""
from __future__ import annotations
import argparse, json, random, shutil, sys, time
from pathlib import Path
import torch
from transformers import Blip2ForConditionalGeneration, Trainer, TrainingArguments, TrainerCallback, set_seed

from blip2_lora.models import tiny_processor, tiny_config
from blip2_lora.data import draw_shape, COLOURS, SHAPES, POSITIONS, Collator

PRETRAIN_SHAPES = ('circle', 'square', 'triangle')

def pretrain_caption(colour:str, shape:str, position:str)->str:
    "The pretraining template (deliberately not the demo's)."
    return f'the {shape} is {colour} , {position}'

class Shapes(torch.utils.data.Dataset):
    "n Pillow-drawn shapes; row i is a pure function of (seed, i), so any order and any worker give the same rows."
    def __init__(self, n:int, seed:int, image_size:int=64, shapes=PRETRAIN_SHAPES):
        self.n, self.seed, self.size = n, seed, image_size
        self.combos = [(c, s, p) for c in COLOURS for s in shapes for p in POSITIONS]
    def __len__(self): return self.n
    def __getitem__(self, i):
        rng = random.Random(self.seed * 1_000_003 + i)
        c, s, p = self.combos[i % len(self.combos)]
        return dict(image=draw_shape(c, s, p, self.size, rng), text=pretrain_caption(c, s, p), combo=(c, s, p))

@torch.no_grad()
def attribute_accuracy(model, processor, data:Shapes, batch_size:int=64)->dict:
    "Greedy captions of `data`: exact match and per-attribute accuracy (words found in the caption)."
    was = model.training; model.eval()
    rows = [data[i] for i in range(len(data))]
    outs = []
    for i in range(0, len(rows), batch_size):
        pv = processor(images=[r['image'] for r in rows[i:i+batch_size]], return_tensors='pt').pixel_values
        ids = model.generate(pixel_values=pv, max_new_tokens=16, do_sample=False)
        outs += [t.strip() for t in processor.tokenizer.batch_decode(ids, skip_special_tokens=True)]
    model.train(was)
    acc = dict(exact=sum(o == r['text'] for o, r in zip(outs, rows)) / len(rows))
    for k, name in enumerate(('colour', 'shape', 'position')):
        acc[name] = sum(r['combo'][k] in o.replace(',', ' ').split() for o, r in zip(outs, rows)) / len(rows)
    return acc

class Probe(TrainerCallback):
    "Print validation accuracy (its own seed: never the demo's held-out images) every `every` steps."
    def __init__(self, processor, data, every): self.processor, self.data, self.every, self.t0 = processor, data, every, time.time()
    def on_step_end(self, args, state, control, model=None, **kw):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            acc = attribute_accuracy(model, self.processor, self.data)
            print(json.dumps(dict(step=state.global_step, s=round(time.time() - self.t0), **{k: round(v, 3) for k, v in acc.items()})), flush=True)

def build(seed:int=0, pos_std:float=0.3):
    "The tiny-opt architecture (same config as `tiny_blip2`), with ViT position embeddings drawn at `pos_std`."
    proc = tiny_processor('opt', 32, 8)
    torch.manual_seed(seed)
    model = Blip2ForConditionalGeneration(tiny_config(proc.tokenizer, 'opt'))
    with torch.no_grad():
        model.query_tokens.normal_(0, 0.02)
        # at the HF std (0.02) positions are ~7% of a patch embedding and position takes >900 steps to learn;
        # at 0.3 a linear probe on the untrained Q-Former output already reads position (1.0 vs 0.82).
        model.vision_model.embeddings.position_embedding.normal_(0, pos_std)
    model.generation_config.max_new_tokens = 20
    return model, proc

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default='blip2_lora/assets/tiny-opt')
    ap.add_argument('--steps', type=int, default=2500)
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--pos-std', type=float, default=0.3)
    ap.add_argument('--probe-every', type=int, default=250)
    a = ap.parse_args(argv)
    set_seed(a.seed); torch.use_deterministic_algorithms(True)
    model, proc = build(a.seed, a.pos_std)
    train = Shapes(a.steps * a.batch_size, seed=a.seed)
    val = Shapes(192, seed=10_000 + a.seed)  # validation images: a seed of their own
    collate = Collator(proc, task='caption', max_length=32)
    tmp = Path(a.out).with_name(Path(a.out).name + '.trainer')
    args = TrainingArguments(output_dir=str(tmp), max_steps=a.steps, per_device_train_batch_size=a.batch_size,
        learning_rate=a.lr, warmup_steps=max(1, a.steps // 25), lr_scheduler_type='cosine', weight_decay=0.01,
        max_grad_norm=1.0, logging_steps=max(1, a.steps // 20), save_strategy='no', report_to='none', seed=a.seed,
        data_seed=a.seed, dataloader_num_workers=0, use_cpu=True, disable_tqdm=True, remove_unused_columns=False)
    trainer = Trainer(model=model, args=args, train_dataset=train,
                      data_collator=lambda rows: collate([dict(image=r['image'], text=r['text']) for r in rows]),
                      callbacks=[Probe(proc, val, a.probe_every)])
    t = time.time(); trainer.train()
    acc = attribute_accuracy(model, proc, val)
    out = Path(a.out); shutil.rmtree(tmp, ignore_errors=True)
    if out.exists(): shutil.rmtree(out)
    model.save_pretrained(out, safe_serialization=True); proc.save_pretrained(out)
    (out/'pretrain.json').write_text(json.dumps(dict({k: v for k, v in vars(a).items() if k != 'out'}, train_seconds=round(time.time() - t), torch=torch.__version__,
        template=pretrain_caption('COLOUR', 'SHAPE', 'POSITION'), shapes=PRETRAIN_SHAPES, val=acc), indent=1))
    print('saved', out, acc)

if __name__ == '__main__': main()
