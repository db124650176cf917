"Inference on the tiny model: adapters from plain peft, batching, merging, and the errors for bad input."
import json
import numpy as np, pytest, torch
from PIL import Image
from peft import LoraConfig, get_peft_model
from blip2_lora.models import Blip2LoraError, load_model, load_processor
from blip2_lora.infer import (adapter_base, load_for_inference, caption, answer, merge_adapter, open_images, token_agreement)

@pytest.fixture(scope='module')
def adapter(tmp_path_factory):
    d = tmp_path_factory.mktemp('ad')/'adapter'
    torch.manual_seed(1)
    pm = get_peft_model(load_model(), LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj', 'v_proj', 'fc1'], init_lora_weights=False))
    pm.save_pretrained(d); return d

def _imgs(n, seed=0):
    rng = np.random.RandomState(seed)
    return [Image.fromarray(rng.randint(0, 255, (rng.randint(20, 48), rng.randint(20, 48), 3), dtype=np.uint8)) for _ in range(n)]

def test_plain_peft_adapter_changes_captions_and_batches(adapter):
    m, proc = load_for_inference(adapter)
    base, _ = load_for_inference(None)
    ims = _imgs(6)
    batched = caption(m, proc, ims, batch_size=4, max_new_tokens=10)
    assert batched == [caption(m, proc, [im], max_new_tokens=10)[0] for im in ims]
    assert batched != caption(base, proc, ims, max_new_tokens=10)   # the adapter does something
    qs = ['what?', 'is the large red bus parked next to the tree?', 'how many?', 'why', 'where is it?', 'a b c d e f g']
    assert answer(m, proc, ims, qs, batch_size=6) == [answer(m, proc, [im], q)[0] for im, q in zip(ims, qs)]

def test_merged_equals_unmerged_and_saved_model(adapter, tmp_path):
    ims = _imgs(4, seed=3)
    m, proc = load_for_inference(adapter, merge=True)
    u, _ = load_for_inference(adapter, merge=False)
    a = caption(m, proc, ims, max_new_tokens=12)
    assert a == caption(u, proc, ims, max_new_tokens=12) and token_agreement(a, a, proc.tokenizer) == 1
    out = merge_adapter(adapter, tmp_path/'merged')
    assert (out/'model.safetensors').exists() and not (out/'adapter_config.json').exists()
    assert caption(load_model(out), load_processor(out), ims, max_new_tokens=12) == a

def test_errors(adapter, tmp_path):
    (tmp_path/'plain').mkdir(); (tmp_path/'bad.png').write_bytes(b'\x89PNG garbage')
    for f, msg in [(lambda: load_for_inference(tmp_path/'plain'), 'not a LoRA adapter folder'),
                   (lambda: load_for_inference(tmp_path/'none'), 'does not exist'),
                   (lambda: load_for_inference(adapter, model='blip2-lora/tiny-t5'), 'does not fit'),
                   (lambda: open_images([tmp_path/'bad.png']), 'not a readable image'),
                   (lambda: open_images([tmp_path/'missing.jpg']), 'does not exist')]:
        with pytest.raises(Blip2LoraError, match=msg) as e: f()
        assert '\n' not in str(e.value)

def test_adapter_base_recorded(adapter):
    assert adapter_base(adapter) == 'blip2-lora/tiny-opt'
    assert json.loads((adapter/'adapter_config.json').read_text())['peft_type'] == 'LORA'

def test_sampling_seeded_and_beams_batched(adapter):
    m, proc = load_for_inference(adapter)
    ims = _imgs(4, seed=5)
    a = caption(m, proc, ims, do_sample=True, seed=3, max_new_tokens=10)
    assert a == caption(m, proc, ims, do_sample=True, seed=3, max_new_tokens=10)
    assert a != caption(m, proc, ims, do_sample=True, seed=4, max_new_tokens=10)
    assert caption(m, proc, ims, num_beams=3, batch_size=4, max_new_tokens=8) == [caption(m, proc, [im], num_beams=3, max_new_tokens=8)[0] for im in ims]
