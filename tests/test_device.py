"""Placement: every path that moves a model or a batch runs on the device under test.

`BLIP2_LORA_TEST_DEVICE` picks the device: `cpu` (default, in `make test`) or `cuda` (the GPU lane, `make test-gpu`).
Each test asserts where the model was during the work (a Trainer callback reads it at every step), so a path that
forgets the device fails on a GPU machine instead of running silently on the CPU. On the CPU the same tests check the
helpers end to end: the training paths (none / int8 / nf4, cache on and off), evaluation-time generation, batched
captioning and VQA, merging and resuming.
"""
import os, shutil
import pytest, torch
from transformers import TrainerCallback
from blip2_lora.models import pick_device, model_device, amp_mode, bf16_ok, load_model, load_processor
from blip2_lora.train import finetune, last_checkpoint
from blip2_lora.infer import load_for_inference, caption, answer, merge_adapter
from blip2_lora.data import synthetic

DEVICE = os.environ.get('BLIP2_LORA_TEST_DEVICE', 'cpu')

@pytest.fixture(scope='module')
def dev():
    if DEVICE.startswith('cuda') and not torch.cuda.is_available(): pytest.skip('BLIP2_LORA_TEST_DEVICE=cuda but torch sees no GPU')
    return pick_device(DEVICE)

class Where(TrainerCallback):
    "Record the device and the Trainer's AMP flags at every training step."
    def __init__(self): self.seen = set()
    def on_step_begin(self, args, state, control, model=None, **kw):
        self.seen.add((model_device(model).type, args.bf16, args.fp16))

def images(n, seed=5): return list(synthetic(n, seed=seed)['image'])

@pytest.mark.parametrize('quant,cache', [('none', True), ('none', False), ('int8', True), ('int8', False), ('nf4', True), ('nf4', False)])
def test_train_on_device(tmp_path, dev, quant, cache):
    "finetune (feature cache on/off, eval generation on) keeps model and batches on the device; the AMP mode follows the policy."
    w = Where()
    res = finetune(data='synthetic:6', eval_data='synthetic:3:1', output=tmp_path/'run', quant=quant, cache=cache, max_steps=2,
                   batch_size=3, targets='llm-all', save_steps=1, device=DEVICE, callbacks=[w])
    amp = None if dev.type != 'cuda' else 'bf16' if bf16_ok(dev) else 'fp16'          # the policy, stated independently of amp_mode
    assert w.seen == {(dev.type, amp == 'bf16', amp == 'fp16')}, w.seen
    assert torch.isfinite(torch.tensor(res.metrics['train_loss']))
    assert isinstance(res.metrics['eval']['eval_sample'], str)            # eval-time generation ran on the device
    assert (tmp_path/'run'/'adapter_model.safetensors').exists()

def test_resume_on_device(tmp_path, dev):
    "A run resumed from a checkpoint (optimizer, scheduler, RNG states) continues on the device."
    out = tmp_path/'run'
    kw = dict(data='synthetic:6', output=out, max_steps=3, batch_size=3, save_steps=1, device=DEVICE,
              targets='seed', lr=5e-4)   # the seed's recipe: the tiny one's lr moves the loss more than the bound below allows
    full = finetune(**kw)
    shutil.rmtree(out/'checkpoints'/'checkpoint-3')                     # as if killed after step 2
    assert last_checkpoint(out/'checkpoints').name == 'checkpoint-2'
    w = Where()
    res = finetune(**kw, resume=True, callbacks=[w])
    assert w.seen and {s[0] for s in w.seen} == {dev.type}
    assert abs(res.metrics['train_loss'] - full.metrics['train_loss']) < 1.0  # it trained (one step), on the device

@pytest.fixture(scope='module')
def adapter(tmp_path_factory, dev):
    out = tmp_path_factory.mktemp('adapter')/'run'
    finetune(data='synthetic:12', output=out, targets='llm-all', max_steps=20, batch_size=6, lr=3e-3, save_steps=100, device=DEVICE)
    return out

@pytest.mark.parametrize('quant', ['none', 'int8', 'nf4'])
def test_caption_and_vqa_batched_on_device(adapter, dev, quant):
    "caption / answer: model on the device, batched output = one-by-one output."
    m, p = load_for_inference(adapter, quant=quant, merge=False, device=DEVICE)
    assert model_device(m).type == dev.type
    ims = images(5)
    caps = caption(m, p, ims, batch_size=5, max_new_tokens=8)
    assert caps == [caption(m, p, [im], max_new_tokens=8)[0] for im in ims]
    qs = ['what colour is the shape?', 'where is it?', 'what?', 'what shape is it on the left or right?', 'is it red?']
    ans = answer(m, p, ims, qs, batch_size=5, max_new_tokens=4)
    assert ans == [answer(m, p, [im], [q], max_new_tokens=4)[0] for im, q in zip(ims, qs)]

def test_merge_on_device(adapter, dev, tmp_path):
    "merge_adapter on the device writes a folder that plain transformers loads on the CPU and that captions like the adapter."
    from transformers import Blip2ForConditionalGeneration
    out = merge_adapter(adapter, tmp_path/'merged', device=DEVICE)
    plain = Blip2ForConditionalGeneration.from_pretrained(out)            # CPU, fp32: written tensors left the device
    p = load_processor(out)
    ims = images(4, seed=9)
    m, _ = load_for_inference(adapter, merge=False, device='cpu')
    assert caption(plain, p, ims, max_new_tokens=8) == caption(m, p, ims, max_new_tokens=8)

def test_cpu_policy():
    "On the CPU the policy is fp32 without AMP; a CUDA request without a GPU is one clear error."
    m = load_model(device='cpu')
    assert (m.device.type, m.dtype, amp_mode(m)) == ('cpu', torch.float32, None)
    if not torch.cuda.is_available():
        from blip2_lora.models import Blip2LoraError
        with pytest.raises(Blip2LoraError, match='torch sees no CUDA GPU'): load_model(device='cuda')

def test_policy_decisions(monkeypatch):
    "pick_device / pick_dtype on GPU machines of each kind (torch's CUDA queries answered as on those machines)."
    from blip2_lora.models import pick_dtype, Blip2LoraError
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 4)
    monkeypatch.setenv('LOCAL_RANK', '3')
    assert pick_device() == torch.device('cuda', 3)           # torchrun rank 3 -> its own GPU, not GPU 0
    assert pick_device('cuda:1') == torch.device('cuda', 1)   # an explicit index wins
    monkeypatch.setenv('LOCAL_RANK', '5')
    with pytest.raises(Blip2LoraError, match='at most one process per GPU'): pick_device()
    for cap, want in [((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16), ((7, 5), torch.float16), ((7, 0), torch.float16)]:
        monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda d=None, c=cap: c)
        assert pick_dtype(torch.device('cuda', 0)) == want, cap   # A100/H100: bf16; T4/V100: fp16

def test_only_the_helper_moves_things():
    "No module but models.py places models or batches (`.cuda()`, `.to(<device>)`, `device_map=`): one helper, one policy."
    import re
    from pathlib import Path
    pkg = Path(__file__).resolve().parent.parent/'blip2_lora'
    bad = []
    for f in sorted(pkg.glob('*.py')):
        if f.name in ('models.py', '_modidx.py'): continue
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if re.search(r"\.cuda\(|\.to\((self\.)?(b\.|model\.)?device|\.to\(['\"]cuda|device_map\s*=", line): bad.append(f'{f.name}:{i}: {line.strip()}')
    assert not bad, bad
