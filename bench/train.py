"""Training speed and memory: our `train()` against the reference loop people copy.

The reference is the loop of PEFT's `examples/int8_training/fine_tune_blip2_int8.py` (the seed article's code):
a processor call per item in `__getitem__`, tokenizer padding in the collator, AdamW, batch 2, 50 epochs. Two
corrections so that both sides learn the same thing: its inputs come from the processor *with* the image placeholder
tokens (else transformers 5 ignores the image), and padding is masked in the labels. Its generate-every-10-steps is
left out: only training is compared. A third correction: EOS appended and the BOS masked, so that its batches equal
`blip2_lora.data.Collator`'s token for token (tested). To make the final losses comparable, both sides use the Trainer's defaults
(AdamW without weight decay, linear decay, gradient clipping at 1.0).

Configurations (each run alone in a child process; peak RSS from `os.wait4`):
- `reference`             : the corrected reference loop
- `reference+preprocess`  : lever 2 alone, the reference with every image preprocessed once up front
- `ours-nocache`          : `train(..., cache=False)`: Trainer, batched collator (images processed per batch)
- `ours`                  : `train(...)` with the frozen-tower feature cache (lever 1: towers run once per image)

    python bench/train.py [--epochs 50] [--n-images 12] [--repeats 3] [--threads 1] [--configs reference,ours]
"""
from __future__ import annotations
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))

def _data(n, seed=0):
    from blip2_lora.data import synthetic
    return synthetic(n, seed=seed, image_size=224)

def _lora(model):
    from blip2_lora.lora import add_lora
    return add_lora(model, 'seed', r=16, alpha=32, dropout=0.05)

def reference_collator(processor):
    "The reference's collator, corrected: image placeholders in front of the text (as the processor puts them), EOS, padding masked."
    import torch
    tok, n_q = processor.tokenizer, processor.num_query_tokens
    image_id = tok.convert_tokens_to_ids(processor.image_token.content)
    def collator(batch):
        # the original: processor.tokenizer([ex['text'] ...], padding=True) -> no <image> placeholders, so transformers 5
        # ignores the image (correction 1); labels = input_ids, padding included (correction 2); no EOS (correction 3)
        text = tok([ex['text'] + tok.eos_token for ex in batch], padding=True, return_tensors='pt')
        ph = torch.full((len(batch), n_q), image_id)
        ids = torch.cat([ph, text['input_ids']], 1)
        mask = torch.cat([torch.ones_like(ph), text['attention_mask']], 1)
        labels = ids.masked_fill(mask == 0, -100)
        labels[:, :n_q + 1] = -100                  # placeholders and BOS are no targets
        out = {'input_ids': ids, 'attention_mask': mask, 'labels': labels}
        if 'pixel_values' in batch[0]: out['pixel_values'] = torch.stack([ex['pixel_values'] for ex in batch])
        return out
    return collator

def train_set_loss(model, processor, ds, batch_size:int=4)->float:
    "Mean loss over the training set in eval mode (no dropout), the same measurement for every configuration."
    import torch
    from blip2_lora.data import Collator
    col, model = Collator(processor), model.eval()
    tot = n = 0
    with torch.no_grad():
        for i in range(0, len(ds), batch_size):
            rows = [ds[j] for j in range(i, min(i + batch_size, len(ds)))]
            tot += model(**col(rows)).loss.item() * len(rows); n += len(rows)
    return tot / n

def run_reference(model_dir, n, epochs, lr, preprocess_once=False, seed=0):
    "The corrected PEFT-example loop; returns (wall s, CPU s, final-epoch running loss, train-set loss)."
    import torch
    from torch.utils.data import Dataset, DataLoader
    from transformers import get_linear_schedule_with_warmup, set_seed
    from blip2_lora.models import load_model, load_processor
    set_seed(seed)
    processor, ds = load_processor(model_dir), _data(n)
    model = _lora(load_model(model_dir)); model.train()
    for m in (model.base_model.model.vision_model, model.base_model.model.qformer): m.eval()  # frozen, as in ours
    t0, c0 = time.perf_counter(), time.process_time()
    class ImageCaptioningDataset(Dataset):
        def __init__(self, dataset, processor):
            self.dataset, self.processor = dataset, processor
            self.pre = [processor(images=r['image'], return_tensors='pt').pixel_values[0] for r in dataset] if preprocess_once else None
        def __len__(self): return len(self.dataset)
        def __getitem__(self, idx):
            item = self.dataset[idx]
            if self.pre is not None: return {'pixel_values': self.pre[idx], 'text': item['text']}
            encoding = self.processor(images=item['image'], return_tensors='pt')  # one processor call per item
            return {'pixel_values': encoding['pixel_values'].squeeze(), 'text': item['text']}
    dl = DataLoader(ImageCaptioningDataset(ds, processor), shuffle=True, batch_size=2, collate_fn=reference_collator(processor))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(opt, 0, epochs * len(dl))
    for epoch in range(epochs):
        losses = []
        for batch in dl:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(); sched.step(); opt.zero_grad()
            losses.append(loss.item())
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    return dt, dc, sum(losses) / len(losses), train_set_loss(model, processor, ds)

def run_ours(model_dir, n, epochs, lr, cache=True, seed=0):
    "Our `train()`; returns (wall s, CPU s, final-epoch running loss, train-set loss)."
    from transformers import set_seed
    from blip2_lora.models import load_model, load_processor
    from blip2_lora.train import train, TrainConfig
    set_seed(seed)
    processor, ds = load_processor(model_dir), _data(n)
    model = _lora(load_model(model_dir))
    out = tempfile.mkdtemp(prefix='bench-train-')
    cfg = TrainConfig(output_dir=out, epochs=epochs, batch_size=2, lr=lr, cache=cache, save_steps=10**6, seed=seed, overwrite=True)
    t0, c0 = time.perf_counter(), time.process_time()
    res = train(model, processor, ds, config=cfg)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    logs = [h for h in res.log_history if 'loss' in h and h['epoch'] > epochs - 1 + 1e-9]  # the last epoch's logged losses
    running = sum(h['loss'] for h in logs) / len(logs) if logs else float('nan')
    shutil.rmtree(out, ignore_errors=True)
    return dt, dc, running, train_set_loss(model, processor, ds)

def child(args):
    import torch
    torch.set_num_threads(args.threads)
    import transformers.trainer, peft, blip2_lora.train, blip2_lora.data  # imports are not part of the timings
    kw = dict(model_dir=args.model_dir, n=args.n_images, epochs=args.epochs, lr=args.lr)
    fn = {'reference': lambda: run_reference(**kw), 'reference+preprocess': lambda: run_reference(**kw, preprocess_once=True),
          'ours-nocache': lambda: run_ours(**kw, cache=False), 'ours': lambda: run_ours(**kw, cache=True)}[args.child]
    dt, dc, running, loss = fn()
    Path(args.result).write_text(json.dumps(dict(seconds=dt, cpu=dc, running=running, loss=loss)))

CONFIGS = ['reference', 'reference+preprocess', 'ours-nocache', 'ours']

def spawn(cfg, args):
    "Run one configuration in its own process; its peak RSS comes from os.wait4."
    res = tempfile.mktemp(suffix='.json')
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TRANSFORMERS_VERBOSITY='error')
    env.pop('TQDM_DISABLE', None)  # our train() draws its progress bar, as users see it (into a file here)
    cmd = [sys.executable, __file__, '--child', cfg, '--result', res, '--model-dir', args.model_dir, '--epochs', str(args.epochs),
           '--n-images', str(args.n_images), '--lr', str(args.lr), '--threads', str(args.threads)]
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty child cannot block on a full pipe
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        if p.returncode: raise SystemExit(f'{cfg} failed:\n{err.read().decode()[-3000:]}')
    r = json.loads(Path(res).read_text()); os.unlink(res)
    r['rss_mb'] = ru.ru_maxrss / 1024  # KiB on Linux
    return r

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--epochs', type=int, default=50); ap.add_argument('--n-images', type=int, default=12)
    ap.add_argument('--repeats', type=int, default=3); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--lr', type=float, default=5e-4); ap.add_argument('--configs', default=','.join(CONFIGS))
    ap.add_argument('--child'); ap.add_argument('--result'); ap.add_argument('--model-dir')
    args = ap.parse_args(argv)
    if args.child: return child(args)
    from common import proportioned_model, forward_flops, caching_ceiling, median, REAL_SPLIT
    from blip2_lora.models import load_model, load_processor
    args.model_dir = args.model_dir or str(proportioned_model())
    configs = args.configs.split(',')
    f = forward_flops(load_model(args.model_dir), load_processor(args.model_dir))
    runs = {c: [] for c in configs}
    for rep in range(args.repeats):            # alternate configurations within each repeat, reversed every other repeat
        for c in (configs if rep % 2 == 0 else configs[::-1]):
            runs[c].append(spawn(c, args))
            r = runs[c][-1]
            print(f"repeat {rep+1}/{args.repeats} {c:22} CPU {r['cpu']:.1f} s, wall {r['seconds']:.1f} s, RSS {r['rss_mb']:.0f} MB, "
                  f"loss {r['loss']:.4f}", flush=True)
    samples = args.n_images * args.epochs
    med = {c: dict(sps=median([samples / r['cpu'] for r in runs[c]]), wall=median([samples / r['seconds'] for r in runs[c]]),
                   rss=median([r['rss_mb'] for r in runs[c]]), loss=median([r['loss'] for r in runs[c]]),
                   running=median([r['running'] for r in runs[c]])) for c in configs}
    base = med.get('reference') or med[configs[0]]
    print(f"\nmodel: vision {f['vision']/1e6:.0f} MFLOP/image, Q-Former {f['qformer']/1e6:.0f}, LLM {f['llm']/1e6:.0f} (64 tokens); "
          f"vision/LLM = {f['vision']/f['llm']:.2f} (blip2-opt-2.7b: {REAL_SPLIT:.2f})")
    print(f'{args.n_images} images x {args.epochs} epochs = {samples} samples, batch 2, fp32, CPU, {args.threads} thread(s), '
          f'{args.repeats} repeats (medians); samples/s per CPU second of the child (robust on a shared machine), wall alongside\n')
    print(f"{'config':22} {'samples/s':>10} {'ratio':>6} {'wall samp/s':>12} {'peak RSS MB':>12} {'ratio':>6} {'final loss':>11} {'Δ loss':>7} {'last-epoch':>11}")
    for c in configs:
        m = med[c]
        print(f"{c:22} {m['sps']:10.2f} {m['sps']/base['sps']:6.2f} {m['wall']:12.2f} {m['rss']:12.0f} {m['rss']/base['rss']:6.2f} "
              f"{m['loss']:11.4f} {100*(m['loss']/base['loss']-1):+6.1f}% {m['running']:11.4f}")
    print('final loss: mean loss of the trained model on the training set in eval mode (same code for all); '
          'last-epoch: mean of the last epoch\'s training losses (dropout on)')
    ceil = caching_ceiling(f, args.epochs)
    if not {'reference', 'ours'} <= set(configs): return med
    ours = med['ours']
    lever = lambda a, b: f"{med[a]['sps']/med[b]['sps']:.2f}x" if a in med and b in med else 'not run'
    print(f"\nFLOP ceiling of caching alone at {args.epochs} epochs: {ceil:.2f}x; measured caching lever (ours / ours-nocache): "
          f"{lever('ours', 'ours-nocache')}; preprocessing lever (reference+preprocess / reference): {lever('reference+preprocess', 'reference')}")
    ok = ours['sps'] / base['sps'] >= 1.7 and ours['rss'] / base['rss'] <= 1.05 and abs(ours['loss'] / base['loss'] - 1) <= 0.05
    print(f"verdict: {'MET' if ok else 'MISSED'} (target >= 1.7x samples/s, <= 1.05x peak RSS, final loss within 5%): "
          f"{ours['sps']/base['sps']:.2f}x, {ours['rss']/base['rss']:.2f}x RSS, {100*(ours['loss']/base['loss']-1):+.1f}% loss")
    return med

if __name__ == '__main__': main()
