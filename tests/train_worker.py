"""Run `blip2_lora.train.finetune` in its own process (plain or under torchrun), optionally killing itself with
SIGKILL at a chosen point: the fault injection for the kill-and-resume and multi-process tests.

python tests/train_worker.py '{"data": "synthetic:12", "output": "/tmp/run", ...}' [--kill-after-step N] [--kill-in-save N]
    [--kill-before-marker N] [--save-total-limit N] [--nan-on-rank R]

Every process prints (stdout) `PREDICT rank=R n=K` per eval generation, `BEST rank=R sum=S` when it loads `best/`,
`NONFINITE rank=R <message>` (exit 3) when the NaN guard stops it, and rank 0 prints `FINAL [losses]`.
"""
import json, os, signal, sys
from pathlib import Path
import torch
torch.set_num_threads(1)

def say(line):
    "One marker line in one write(2): both processes share the pipe, and a write under PIPE_BUF is never interleaved (print may issue the text and the newline as two writes, e.g. under PYTHONUNBUFFERED; CI once read 'check the dataNONFINITE rank=0')."
    sys.stdout.flush(); os.write(1, (line.replace('\n', ' ') + '\n').encode())
import peft
from transformers import TrainerCallback, Trainer
import blip2_lora.train as T, blip2_lora.trainer as TR
from blip2_lora.train import finetune, NonFiniteLoss, COMPLETE

RANK = int(os.environ.get('RANK', '0'))
def die(): os.kill(os.getpid(), signal.SIGKILL)
def arg(flag): return int(sys.argv[sys.argv.index(flag) + 1]) if flag in sys.argv else None

class KillAfterStep(TrainerCallback):
    "SIGKILL right after optimizer step `n` (its checkpoint, if any, not yet written)."
    def __init__(self, n): self.n = n
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.n: die()

def kill_in_save(n):
    "SIGKILL while checkpoint `n` is half written: after adapter and optimizer, before RNG state and trainer_state.json."
    orig = Trainer._save_rng_state
    def patched(self, output_dir):
        if self.state.global_step == n: die()
        return orig(self, output_dir)
    Trainer._save_rng_state = patched

def kill_before_marker(n):
    "SIGKILL when checkpoint `n` is fully written but its COMPLETE marker not yet."
    orig = Path.write_text
    def patched(self, *a, **kw):
        if self.name == COMPLETE and self.parent.name == f'checkpoint-{n}': die()
        return orig(self, *a, **kw)
    Path.write_text = patched

def keep_checkpoints(n):
    "Run with `save_total_limit=n` (finetune keeps the default of `TrainConfig`)."
    ta = T.training_args
    def patched(config, *a, **kw): config.save_total_limit = n; return ta(config, *a, **kw)
    T.training_args = patched

def nan_on_rank(r):
    "From step 2 on, the training loss of process `r` (only) is NaN."
    orig = Trainer.compute_loss
    def patched(self, model, inputs, *a, **kw):
        res = orig(self, model, inputs, *a, **kw)
        if RANK != r or not model.training or self.state.global_step < 1: return res
        return (res[0] * float('nan'), *res[1:]) if isinstance(res, tuple) else res * float('nan')
    Trainer.compute_loss = patched

def report():
    "Print what each process generated for evaluation and which `best/` weights it loaded."
    pred = TR._predict                         # Blip2Trainer.evaluate (blip2_lora.trainer) calls it
    def predict(model, processor, examples, collate, max_new_tokens, *a, **kw):
        out = pred(model, processor, examples, collate, max_new_tokens, *a, **kw)
        say(f'PREDICT rank={RANK} n={len(out)}'); return out
    TR._predict = predict
    setsd = peft.set_peft_model_state_dict
    def set_state(model, sd, *a, **kw):
        say(f'BEST rank={RANK} sum={sum(float(v.double().sum()) for v in sd.values()):.10e}')
        return setsd(model, sd, *a, **kw)
    peft.set_peft_model_state_dict = set_state

if __name__ == '__main__':
    kw = json.loads(sys.argv[1]); cbs = []
    if arg('--kill-after-step'): cbs.append(KillAfterStep(arg('--kill-after-step')))
    if arg('--kill-in-save'): kill_in_save(arg('--kill-in-save'))
    if arg('--kill-before-marker'): kill_before_marker(arg('--kill-before-marker'))
    if arg('--save-total-limit'): keep_checkpoints(arg('--save-total-limit'))
    if arg('--nan-on-rank') is not None: nan_on_rank(arg('--nan-on-rank'))
    report()
    try: r = finetune(**kw, callbacks=cbs)
    except NonFiniteLoss as e:
        say(f'NONFINITE rank={RANK} {e}'); sys.exit(3)
    if RANK == 0: print('FINAL', json.dumps([h['loss'] for h in r.log_history if 'loss' in h]))
