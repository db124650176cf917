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

# --- issue 15: quantized bases stay unmerged, evaluation streams, prompts are plain text ------------------------
def test_quantized_base_keeps_adapter_unmerged(adapter):
    "int8/nf4: merging re-quantizes (NF4 outputs change), so the default keeps the adapter separate; fp32 still merges."
    from peft import PeftModel
    assert not isinstance(load_for_inference(adapter)[0], PeftModel)            # fp32: merged, as before
    ims = _imgs(3, seed=8)
    m, proc = load_for_inference(adapter, quant='nf4')
    assert isinstance(m, PeftModel) and getattr(m.base_model.model, 'is_quantized', False)
    assert caption(m, proc, ims, max_new_tokens=8) == caption(load_for_inference(adapter, quant='nf4', merge=False)[0], proc, ims, max_new_tokens=8)
    with pytest.warns(UserWarning, match='re-quantiz'): mm, _ = load_for_inference(adapter, quant='int8', merge=True)
    assert not isinstance(mm, PeftModel)                                       # asked for explicitly: merged, with a warning

def test_evaluate_streams_batches_and_limit(adapter, monkeypatch):
    "evaluate hands generate_texts one batch of decoded images at a time, and scores only `limit` images."
    import blip2_lora.infer as inf
    from blip2_lora.data import synthetic
    m, proc = load_for_inference(adapter)
    seen, real = [], inf.generate_texts
    monkeypatch.setattr(inf, 'generate_texts', lambda model, p, ims, *a, **k: seen.append(len(ims)) or real(model, p, ims, *a, **k))
    ds = synthetic(7, seed=2)
    full = inf.evaluate(m, proc, ds, batch_size=3, max_new_tokens=4)
    assert full['n_images'] == 7 and max(seen) <= 3 and sum(seen) == 7
    seen.clear()
    assert inf.evaluate(m, proc, ds, batch_size=3, max_new_tokens=4, limit=4) == inf.evaluate(m, proc, ds.select(range(4)), batch_size=3, max_new_tokens=4)
    assert sum(seen) == 8 and max(seen) <= 3
    seen.clear(); v = synthetic(5, seed=1, task='vqa')
    assert inf.evaluate(m, proc, v, task='vqa', batch_size=2, limit=3)['n_images'] == 3 and seen == [2, 1]
    seen.clear(); caption(m, proc, _imgs(5), batch_size=2, max_new_tokens=3)
    assert seen == [2, 2, 1]
    with pytest.raises(Blip2LoraError, match='limit must be >= 1'): inf.evaluate(m, proc, ds, limit=0)

def test_prompt_with_special_token_text_refused(adapter):
    m, proc = load_for_inference(adapter)
    for f in (lambda: answer(m, proc, _imgs(2), ['what?', 'is it an <image>?']), lambda: caption(m, proc, _imgs(1), prompt='a </s> photo')):
        with pytest.raises(Blip2LoraError) as e: f()
        assert 'special token' in str(e.value) and '\n' not in str(e.value)
    assert 'question 1' in str(pytest.raises(Blip2LoraError, answer, m, proc, _imgs(2), ['what?', 'is it an <image>?']).value)

# --- issue 18: export for serving (merged folder + vLLM LoRA folder) ------------------------------------------------
@pytest.fixture(scope='module')
def llm_adapter(tmp_path_factory):
    "LoRA on the language model only (q_proj/v_proj exist only in OPT): what vLLM can serve as LoRA."
    d = tmp_path_factory.mktemp('llm')/'adapter'
    torch.manual_seed(2)
    pm = get_peft_model(load_model(), LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj', 'v_proj'], init_lora_weights=False))
    pm.save_pretrained(d); return d

def test_export_for_serving_merged_and_lora(llm_adapter, tmp_path):
    from safetensors.torch import load_file
    from transformers import Blip2ForConditionalGeneration
    from blip2_lora.infer import export_for_serving, load_adapter
    ims = _imgs(4, seed=11)
    m, proc = load_for_inference(llm_adapter, merge=False)
    want = caption(m, proc, ims, max_new_tokens=12)
    s = export_for_serving(llm_adapter, tmp_path/'serve', dtype='float32')
    assert caption(Blip2ForConditionalGeneration.from_pretrained(s['merged']), proc, ims, max_new_tokens=12) == want
    got, trained = load_file(str(s['lora']/'adapter_model.safetensors')), load_file(str(llm_adapter/'adapter_model.safetensors'))
    assert got.keys() == trained.keys() and all(torch.equal(got[k], trained[k]) for k in got)
    assert all(k.startswith('base_model.model.language_model.model.decoder.layers.') and '.lora_' in k for k in got)
    assert caption(load_adapter(load_model(), s['lora'], merge=False), proc, ims, max_new_tokens=12) == want

@pytest.mark.parametrize('dt', ['float16', 'bfloat16'])
def test_export_16bit_folders_load_in_their_dtype(llm_adapter, tmp_path, dt):
    from transformers import Blip2ForConditionalGeneration
    from blip2_lora.infer import export_for_serving
    s = export_for_serving(llm_adapter, tmp_path/'s', dtype=dt, lora=False)
    assert s['lora'] is None and json.loads((s['merged']/'config.json').read_text())['dtype'] == dt
    m = Blip2ForConditionalGeneration.from_pretrained(s['merged'], dtype='auto')
    assert m.language_model.dtype == getattr(torch, dt) and m.vision_model.dtype == getattr(torch, dt)

def test_export_refuses_lora_outside_the_language_model(adapter, tmp_path):
    "The module fixture also adapts fc1, which the vision tower has too: vLLM would drop that part, so merged only."
    from blip2_lora.infer import export_for_serving, export_vllm_adapter
    for f in (lambda: export_vllm_adapter(adapter, tmp_path/'a'), lambda: export_for_serving(adapter, tmp_path/'b', lora=True)):
        with pytest.raises(Blip2LoraError, match='outside the language model.*can only be served merged') as e: f()
        assert '\n' not in str(e.value)
    assert not (tmp_path/'b').exists()
    s = export_for_serving(adapter, tmp_path/'c', dtype='float32')
    assert s['lora'] is None and 'vision_model' in s['lora_note'] and (s['merged']/'model.safetensors').exists()
    with pytest.raises(Blip2LoraError, match='not a serving dtype'): export_for_serving(adapter, tmp_path/'d', dtype='int8')

def test_merge_adapter_is_atomic(tmp_path, monkeypatch):
    "A crash while the merged folder is written leaves no folder behind (the retry is not blocked), and no temporary one."
    import pytest
    from transformers import Blip2Processor
    from blip2_lora.train import finetune
    from blip2_lora.infer import merge_adapter
    finetune(data='synthetic:6', output=tmp_path/'run', max_steps=1, batch_size=3, save_steps=10)
    def boom(self, *a, **k): raise OSError('disk full')
    with monkeypatch.context() as mp:
        mp.setattr(Blip2Processor, 'save_pretrained', boom)          # the weights are written, then the processor fails
        with pytest.raises(OSError): merge_adapter(tmp_path/'run', tmp_path/'merged')
    assert not (tmp_path/'merged').exists() and not list(tmp_path.glob('.merged.tmp-*'))
    out = merge_adapter(tmp_path/'run', tmp_path/'merged')            # the retry works
    assert (out/'config.json').exists() and any(out.glob('*.safetensors'))

def test_adapter_base_keeps_a_users_folder_named_tiny_opt(tmp_path, monkeypatch):
    "A folder of the user's called tiny-opt is that folder (it was mapped to the shipped base, whose shapes differ); cache paths and paths from other machines still map to the reserved name."
    from blip2_lora.infer import adapter_base
    from blip2_lora.models import cache_dir
    monkeypatch.setenv('BLIP2_LORA_CACHE', str(tmp_path/'cache'))
    own = tmp_path/'work'/'tiny-opt'; own.mkdir(parents=True); (tmp_path/'cache'/'tiny-t5-v3').mkdir(parents=True)
    def ad(base):
        d = tmp_path/'ad'; d.mkdir(exist_ok=True); (d/'adapter_model.safetensors').write_bytes(b'')
        (d/'adapter_config.json').write_text(json.dumps(dict(peft_type='LORA', base_model_name_or_path=str(base))))
        return adapter_base(d)
    assert ad(own) == str(own)
    assert ad(cache_dir()/'tiny-t5-v3') == 'blip2-lora/tiny-t5'
    assert ad('/elsewhere/.cache/blip2-lora/tiny-opt-v2') == 'blip2-lora/tiny-opt'
    assert ad('blip2-lora/tiny-opt') == 'blip2-lora/tiny-opt'
