"""Full-size blip2-opt-2.7b on a GPU: load fp16 / int8 / nf4, LoRA training speed and peak memory, caption latency.

A single prepared script for a lent GPU machine, which never reaches the Hub: it builds blip2-opt-2.7b from
`blip2_lora.models.real_config` with random weights (speed and memory do not depend on the values), saves it in HF
format, and then for each of fp16 / int8 / nf4 loads it with `blip2_lora.models.load_model`, measures the latency of
a 20-token caption (batch 1, greedy, fixed length), and LoRA training (`seed` preset, r=16, AdamW) at batch 2 and 8 with
gradient checkpointing: seconds per step, samples/s and peak `torch.cuda.max_memory_allocated`, next to the
`blip2_lora.quant.plan()` estimate (without its CUDA-context allowance, which `max_memory_allocated` does not see).
Inputs are built as tensors (32 `<image>` placeholders + 32 random text tokens; 224-px random pixels), so no
tokenizer is needed. One short table at the end; `--json FILE` also writes the numbers. Target: ≤ 8 min on an H100
(a `--budget-s` guard skips what would not fit and says so).

    python bench/gpu.py                      # on the GPU machine
    python bench/gpu.py --dry-run            # CPU, tiny BLIP-2, fp32: checks the script end to end (tested)
"""
from __future__ import annotations
import argparse, gc, json, os, shutil, sys, tempfile, time, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
import common  # noqa: F401  (quiet logs, one thread unless told otherwise)
warnings.filterwarnings('ignore', message='.*(gradient_checkpointing_enable|is_gradient_checkpointing).*')

GiB = 2**30

def build(out:Path, dry_run:bool, device)->Path:
    """Write a random-weight model folder: blip2-opt-2.7b in fp16 (GPU), or the tiny BLIP-2 (dry run).

    The full-size folder also holds a processor (the tiny byte-level tokenizer, 224-px images, 32 placeholders) whose
    `<image>` id the config uses, so the tutorial's `cuda` cells can load it in place of the Hub id."""
    import torch
    from transformers import Blip2ForConditionalGeneration
    from blip2_lora.models import real_config, tiny_blip2, tiny_processor
    if dry_run: return tiny_blip2(out)
    proc = tiny_processor('opt', image_size=224, num_query_tokens=32)
    cfg = real_config('Salesforce/blip2-opt-2.7b')
    cfg.image_token_id = cfg.image_token_index = proc.tokenizer.convert_tokens_to_ids('<image>')
    old = torch.get_default_dtype(); torch.set_default_dtype(torch.float16)
    try:
        with torch.device(device): model = Blip2ForConditionalGeneration(cfg)
    finally: torch.set_default_dtype(old)
    model.save_pretrained(out, safe_serialization=True); proc.save_pretrained(out)
    del model; gc.collect(); torch.cuda.empty_cache()
    return out

def inputs(model, batch:int, n_text:int, seed:int=0)->dict:
    "A training batch as tensors on the model's device (`to_device`): `<image>` placeholders + random text ids, random pixels."
    import torch
    from blip2_lora.models import to_device
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    nq, size, V = cfg.num_query_tokens, cfg.vision_config.image_size, cfg.text_config.vocab_size
    img = cfg.image_token_id
    text = torch.randint(4, min(V, img if img and img > 100 else V) - 1, (batch, n_text), generator=g)
    ids = torch.cat([torch.full((batch, nq), img), text], 1)
    labels = ids.masked_fill(ids == img, -100)
    pix = torch.randn(batch, 3, size, size, generator=g)
    return to_device(dict(pixel_values=pix, input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels), model)

def sync(device):
    import torch
    if device.type == 'cuda': torch.cuda.synchronize()

def caption_latency(model, device, new_tokens:int, repeats:int)->float:
    "Median seconds for one greedy caption of exactly `new_tokens` tokens (batch 1)."
    import torch
    b = inputs(model, 1, 0)
    bos = model.config.text_config.bos_token_id
    ids = torch.cat([b['input_ids'], torch.full((1, 1), bos, device=device)], 1)
    kw = dict(pixel_values=b['pixel_values'], input_ids=ids, attention_mask=torch.ones_like(ids),
              max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    ts = []
    with torch.no_grad():
        for i in range(repeats + 1):                     # the first call warms up
            sync(device); t0 = time.perf_counter(); out = model.generate(**kw); sync(device)
            if i: ts.append(time.perf_counter() - t0)
    assert out.shape[1] - ids.shape[1] == new_tokens, out.shape
    return sorted(ts)[len(ts) // 2]

def train_steps(model, quant:str, batches:list[int], steps:int, n_text:int, device)->dict:
    "LoRA (seed, r=16) with gradient checkpointing, under the precision policy's autocast: per batch size, median s/step, samples/s, peak GPU memory."
    import torch
    from blip2_lora.lora import add_lora
    from blip2_lora.models import amp_mode
    from peft import prepare_model_for_kbit_training
    if quant != 'none': model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs=dict(use_reentrant=False))
    else: model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=dict(use_reentrant=False))
    torch.manual_seed(0)
    pm = add_lora(model, 'seed', r=16, alpha=32, dropout=0.05).train()
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-4)
    amp = amp_mode(model)                                # 'bf16' on an H100/H200, as the Trainer would run it
    ac = dict(device_type='cuda', dtype=torch.bfloat16 if amp == 'bf16' else torch.float16, enabled=amp is not None)
    scaler = torch.amp.GradScaler('cuda', enabled=amp == 'fp16')  # fp16 (T4/V100): loss scaling, as Trainer(fp16=True)
    res = {}
    for B in batches:
        batch = inputs(model, B, n_text, seed=B)
        if device.type == 'cuda': torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
        ts, losses = [], []
        for i in range(steps + 1):                       # the first step warms up
            sync(device); t0 = time.perf_counter()
            with torch.autocast(**ac): loss = pm(**batch).loss
            scaler.scale(loss).backward(); scaler.step(opt); scaler.update(); opt.zero_grad(set_to_none=True)
            sync(device); losses.append(loss.item())
            if i: ts.append(time.perf_counter() - t0)
        s = sorted(ts)[len(ts) // 2]
        peak = torch.cuda.max_memory_allocated() if device.type == 'cuda' else None
        res[B] = dict(step_s=s, samples_s=B / s, peak=peak, loss=losses[-1])
        del batch
    return res

TARGETS = {'int8': 8 * GiB, 'nf4': 5 * GiB}   # peak GPU memory of the seed recipe at batch 2 (issue 13)

def verdicts(rows:list, batches:list[int], batch:int=2)->list[str]:
    "One line per target: int8 peak <= 8 GiB and nf4 <= 5 GiB at batch 2, plan() within 10% of the measured peak."
    out = []
    for r in rows:
        t = r['train'].get(batch)
        if t is None or t['peak'] is None: continue
        err = t['plan'] / t['peak'] - 1
        out.append(f"{r['quant']}: plan within 10% of the measured peak at batch {batch}: {'MET' if abs(err) <= .10 else 'MISSED'} ({err:+.1%})")
        if r['quant'] in TARGETS:
            out.append(f"{r['quant']}: peak {t['peak'] / GiB:.2f} GiB <= {TARGETS[r['quant']] / GiB:.0f} GiB: {'MET' if t['peak'] <= TARGETS[r['quant']] else 'MISSED'}")
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dry-run', action='store_true', help='CPU, tiny BLIP-2, fp32: check the script end to end')
    ap.add_argument('--steps', type=int, default=None, help='timed training steps per batch size (default 5; dry run 1)')
    ap.add_argument('--batches', default='2,8'); ap.add_argument('--new-tokens', type=int, default=20)
    ap.add_argument('--text-tokens', type=int, default=32); ap.add_argument('--repeats', type=int, default=None)
    ap.add_argument('--quants', default='none,int8,nf4'); ap.add_argument('--budget-s', type=float, default=420)
    ap.add_argument('--workdir', help='where the random model is saved (default: a temporary folder, removed at the end)')
    ap.add_argument('--json', help='also write the results to this file')
    args = ap.parse_args(argv)
    import torch
    from blip2_lora.models import load_model, n_params, pick_device, pick_dtype
    from blip2_lora.quant import plan, true_weight_bytes
    T0 = time.perf_counter()
    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run: raise SystemExit('no CUDA device: run this on the GPU machine, or pass --dry-run (CPU, tiny model)')
    device = pick_device('auto' if cuda else 'cpu'); dtype = pick_dtype(device)   # the precision policy: bf16 on Ampere+
    steps = args.steps or (5 if cuda else 1); repeats = args.repeats or (3 if cuda else 1)
    batches = [int(b) for b in args.batches.split(',')]
    work = Path(args.workdir or tempfile.mkdtemp(prefix='bench-gpu-'))
    mdir = work/'model'
    if not (mdir/'config.json').exists(): build(mdir, args.dry_run, device)
    t_build = time.perf_counter() - T0
    name = 'blip2-lora/tiny-opt (dry run)' if args.dry_run else 'blip2-opt-2.7b (random weights)'
    print(f'{name}: built and saved in {t_build:.0f} s; device {torch.cuda.get_device_name() if cuda else "CPU"}', flush=True)
    rows, skipped = [], []
    for q in args.quants.split(','):
        if time.perf_counter() - T0 > args.budget_s: skipped.append(q); continue
        gc.collect()
        if cuda: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter(); model = load_model(mdir, quant=q, device=device); t_load = time.perf_counter() - t0
        assert model.device == device, (model.device, device)   # load_model placed it, quantized or not
        row = dict(quant={'none': str(dtype).replace('torch.', '').replace('float', 'fp').replace('bfloat', 'bf')}.get(q, q),
                   load_s=t_load, weights=true_weight_bytes(model), n_params=n_params(model),
                   caption_s=caption_latency(model, device, args.new_tokens, repeats))
        # a fresh load for training: clean peak memory, and bitsandbytes repacks NF4 weights for CPU inference,
        # after which they cannot be trained (CPU dry run)
        del model; gc.collect()
        if cuda: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
        row['train'] = train_steps(load_model(mdir, quant=q, device=device), q, batches, steps, args.text_tokens, device)
        for B in batches:
            p = plan(str(mdir), quant=q, batch_size=B, seq_len=args.text_tokens, gradient_checkpointing=True,
                     dtype=str(dtype).replace('torch.', ''))
            row['train'][B]['plan'] = p.total - p.cuda_context
        rows.append(row)
        print(f"{row['quant']}: loaded in {t_load:.1f} s, caption {1000 * row['caption_s']:.0f} ms, "
              + ', '.join(f"batch {B}: {r['step_s']:.3f} s/step" for B, r in row['train'].items()) + f' ({time.perf_counter() - T0:.0f} s so far)', flush=True)
        gc.collect()
    if not args.workdir: shutil.rmtree(work, ignore_errors=True)
    U, u = (GiB, 'GiB') if cuda else (2**20, 'MiB')
    fmt = lambda b: '-' if b is None else f'{b / U:.2f}'
    print(f"\n{name}, {dtype}, LoRA seed r=16, gradient checkpointing, {args.text_tokens} text tokens + 32 image tokens, "
          f"{steps} timed steps (median), caption = {args.new_tokens} new tokens at batch 1")
    head = f"{'quant':6} {'load s':>7} {f'weights {u}':>12} {'caption ms':>11}"
    for B in batches: head += f" {f'b{B} s/step':>10} {f'b{B} samp/s':>11} {f'b{B} peak {u}':>13} {f'b{B} plan {u}':>13}"
    print(head)
    for r in rows:
        line = f"{r['quant']:6} {r['load_s']:7.1f} {r['weights'] / U:12.2f} {1000 * r['caption_s']:11.0f}"
        for B in batches:
            t = r['train'][B]
            line += f" {t['step_s']:10.3f} {t['samples_s']:11.2f} {fmt(t['peak']):>13} {t['plan'] / U:13.2f}"
        print(line)
    if skipped: print(f"skipped (over the --budget-s {args.budget_s:.0f} s guard): {', '.join(skipped)}")
    for line in verdicts(rows, batches): print(line)
    total = time.perf_counter() - T0
    print(f'total {total:.0f} s' + ('' if args.dry_run else f" ({'within' if total <= 480 else 'OVER'} the 8-min target)"))
    if args.json: Path(args.json).write_text(json.dumps(dict(model=name, device=str(device), rows=rows, skipped=skipped, total_s=total), indent=1, default=str))
    return rows

if __name__ == '__main__': main()
