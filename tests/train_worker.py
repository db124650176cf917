"""Run `blip2_lora.train.finetune` in its own process (plain or under torchrun), optionally killing itself with
SIGKILL at a chosen point: the fault injection for the kill-and-resume tests.

python tests/train_worker.py '{"data": "synthetic:12", "output": "/tmp/run", ...}' [--kill-after-step N] [--kill-in-save N]
"""
import json, os, signal, sys
import torch
torch.set_num_threads(1)
from transformers import TrainerCallback, Trainer
from blip2_lora.train import finetune

def die(): os.kill(os.getpid(), signal.SIGKILL)

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

if __name__ == '__main__':
    kw = json.loads(sys.argv[1]); cbs = []
    if '--kill-after-step' in sys.argv: cbs.append(KillAfterStep(int(sys.argv[sys.argv.index('--kill-after-step') + 1])))
    if '--kill-in-save' in sys.argv: kill_in_save(int(sys.argv[sys.argv.index('--kill-in-save') + 1]))
    r = finetune(**kw, callbacks=cbs)
    if int(os.environ.get('RANK', '0')) == 0: print('FINAL', json.dumps([h['loss'] for h in r.log_history if 'loss' in h]))
