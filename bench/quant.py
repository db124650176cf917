"""Quantization on the CPU: weight footprint and LoRA training step time of none / int8 / nf4, next to `plan()`.

The model is the proportioned tiny BLIP-2 of `bench/common.py` (224-px images, vision : LLM compute split like
blip2-opt-2.7b), loaded with `blip2_lora.models.load_model(quant=...)` (real bitsandbytes layers, which run on the CPU).
Footprint: `true_weight_bytes` (parameters + buffers + bitsandbytes' scales) and transformers' `get_memory_footprint`,
next to `blip2_lora.quant.plan(model_dir, quant, dtype='float32')`'s weights + constants estimate. Step time: one LoRA
(`seed` preset, r=16) training step at batch 2 (forward, backward, AdamW), as `finetune` trains: int8/nf4 go through
`prepare_model_for_kbit_training` with gradient checkpointing. The variants are alternated step by step; the
table shows medians of CPU seconds of the process (robust on a shared machine).

    python bench/quant.py [--steps 10] [--threads 1]
"""
from __future__ import annotations
import argparse, os, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))

QUANTS = ('none', 'int8', 'nf4')
VARIANTS = QUANTS  # ('none+gc' also works: fp32 with gradient checkpointing)

def setup(model_dir:str, variant:str, batch:dict):
    "A LoRA model for `variant` as `finetune` builds it, and a closure running one training step on `batch`."
    import torch
    from transformers import set_seed
    from blip2_lora.models import load_model
    from blip2_lora.lora import add_lora
    from blip2_lora.quant import true_weight_bytes
    quant = variant.split('+')[0]
    base = load_model(model_dir, quant=quant)
    weights = dict(true=true_weight_bytes(base), hf=base.get_memory_footprint())
    if quant != 'none':
        from peft import prepare_model_for_kbit_training
        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=True, gradient_checkpointing_kwargs=dict(use_reentrant=False))
    elif variant.endswith('+gc'): base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=dict(use_reentrant=False))
    set_seed(0)
    model = add_lora(base, 'seed', r=16, alpha=32, dropout=0.05).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    def step():
        loss = model(**batch).loss
        loss.backward(); opt.step(); opt.zero_grad()
        return loss.item()
    return weights, step

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=10); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--model-dir', help='model folder (default: the proportioned tiny BLIP-2)')
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    from common import proportioned_model, median
    from blip2_lora.models import load_processor
    from blip2_lora.data import synthetic, Collator
    from blip2_lora.quant import plan
    md = args.model_dir or str(proportioned_model())
    data = synthetic(2, seed=0, image_size=224)
    batch = Collator(load_processor(md))([data[0], data[1]])
    seq = batch['input_ids'].shape[1] - load_processor(md).num_query_tokens
    made = {q: setup(md, q, batch) for q in VARIANTS}
    for q in VARIANTS: made[q][1]()                   # warm-up step
    times, losses = {q: [] for q in VARIANTS}, {q: [] for q in VARIANTS}
    for i in range(args.steps):                        # alternate the variants step by step
        for q in (VARIANTS if i % 2 == 0 else VARIANTS[::-1]):
            c0 = time.process_time(); losses[q].append(made[q][1]()); times[q].append(time.process_time() - c0)
    plans = {q: plan(md, quant=q.split('+')[0], batch_size=2, seq_len=seq, gradient_checkpointing=q != 'none', dtype='float32') for q in VARIANTS}
    KiB = 1024
    print(f'proportioned tiny BLIP-2 ({md}), fp32 compute, CPU, {args.threads} thread(s); LoRA seed r=16, batch 2, '
          f'{args.steps} steps per variant (median CPU time)\n')
    print(f"{'quant':8} {'weights KiB':>12} {'HF footprint':>13} {'plan KiB':>9} {'plan/meas':>10} {'vs none':>8} {'step ms':>8} {'vs none':>8} {'loss first→last':>16}")
    w0, t0 = made['none'][0]['true'], median(times['none'])
    res = {}
    for q in VARIANTS:
        w, p, t = made[q][0], plans[q].weights + plans[q].constants, median(times[q])
        res[q] = dict(weights=w['true'], hf=w['hf'], plan=p, step_s=t)
        print(f"{q:8} {w['true'] / KiB:12.0f} {w['hf'] / KiB:13.0f} {p / KiB:9.0f} {p / w['true']:10.3f} {w['true'] / w0:8.2f} "
              f"{1000 * t:8.1f} {t / t0:8.2f} {f'{losses[q][0]:.3f}→{losses[q][-1]:.3f}':>16}")
    print('\nweights = parameters + buffers + bitsandbytes scales (SCB, NF4 absmax); HF footprint = get_memory_footprint(); '
          "plan = plan(...).weights + .constants. int8/nf4 steps use gradient checkpointing (as finetune does).")
    worst = max(abs(r['plan'] / r['weights'] - 1) for r in res.values())
    print(f"verdict: plan() weight estimate within {100 * worst:.1f}% of the measured footprint for every variant; "
          f"nf4 weights {res['nf4']['weights'] / w0:.2f}x and int8 {res['int8']['weights'] / w0:.2f}x of fp32; "
          f"steps cost {res['int8']['step_s'] / t0:.2f}x (int8) and {res['nf4']['step_s'] / t0:.2f}x (nf4) of fp32 on this CPU")
    return res

if __name__ == '__main__': main()
